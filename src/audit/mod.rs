//! The audit log: an append-only RFC 9162 Merkle log of the decisions the toolchain makes
//! (approvals, gate verdicts, TEMP-STUB decisions, sealed releases, agent applies), stored in
//! git under `refs/treaty/audit` in the C2SP `tlog-tiles` layout, vouched for by C2SP
//! `tlog-checkpoint` signed notes.
//!
//! Owns the entry format (RFC 8785 canonical JSON, optionally signed by its actor), the
//! recomputation of everything a log claims (entries → leaf hashes → every tile → the
//! checkpoint's root), checkpoint signatures by the group the root names in its `log` role,
//! and consistency with an older checkpoint. It never trusts a stored hash it can recompute,
//! and it never touches a branch, the index or the work tree: only its own ref.

pub mod store;
pub mod tiles;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::crypto::{PublicKey, SigningKey};
use crate::merkle::{self, Hash};
use crate::note::{Checkpoint, Note, VerifierKey};

/// The ref the log lives on.
pub const AUDIT_REF: &str = "refs/treaty/audit";
/// The checkpoint's path in the log's tree.
pub const CHECKPOINT_PATH: &str = "checkpoint";
/// Beside the checkpoint, optionally: an RFC 3161 timestamp token over its bytes (an agent's
/// receipt log, docs/law.md § Receipts), written in the same commit.
pub const CHECKPOINT_TIMESTAMP_PATH: &str = "checkpoint.tst";
/// The default checkpoint origin line.
pub const DEFAULT_ORIGIN: &str = "treaty.dev/audit";
/// The DSSE payload type an actor's entry signature is over.
pub const ENTRY_PAYLOAD_TYPE: &str = "application/vnd.treaty.audit-entry+json";
/// The role in `keys/root.json` whose group signs checkpoints.
pub const LOG_ROLE: &str = crate::governance::model::Role::Log.as_str();

/// Why the log could not be read or written (I/O, git); findings about content are
/// [`Problem`]s instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{0}")]
    Refused(String),
    /// A bundle or tile the log must hold is damaged.
    #[error("{path}: {source}")]
    Tile {
        path: String,
        #[source]
        source: tiles::TileError,
    },
    /// An entry to append is not a valid entry.
    #[error("entry: {0}")]
    Entry(#[from] EntryError),
    /// The ref names a commit whose tree is not the log's layout (a governance commit, say): it
    /// is not an empty log, and reading it as one would vouch for nothing.
    #[error("the log's ref (refs/treaty/audit, or an agent's refs/treaty/receipts/…) points at commit {commit}, which is not an audit log (its tree holds {found}; a log holds only `checkpoint`, its timestamp `checkpoint.tst`, and `tile/`): restore the ref from a clone that has the log (`git fetch origin refs/treaty/audit:refs/treaty/audit`), or delete it if this repository has no log yet")]
    NotALog { commit: String, found: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why a JSON value is not a valid log entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("an entry is a JSON object")]
    NotAnObject,
    /// The key could not sign (a TPM-resident key's TPM failed); the message says why.
    #[error("cannot sign the entry: {0}")]
    Sign(String),
    #[error("an entry needs a non-empty string `kind`")]
    NoKind,
    #[error("an entry needs `time`, an RFC 3339 instant")]
    NoTime,
    #[error("entries carry integers only, never floating-point numbers")]
    Float,
    #[error("cannot canonicalise: {0}")]
    Canonicalise(String),
    #[error("entry is {size} bytes, over the {limit} limit")]
    TooLarge { size: usize, limit: usize },
    #[error("not JSON: {0}")]
    NotJson(#[from] crate::json::JsonError),
    #[error("not in RFC 8785 canonical form")]
    NotCanonical,
    #[error("`signatures` is not a list")]
    SignaturesNotAList,
    #[error("a signature lacks keyid or sig")]
    SignatureIncomplete,
    #[error("signature by key {keyid} is not base64")]
    SignatureNotBase64 { keyid: String },
    #[error("{actor}'s signature (key {keyid}) does not verify")]
    SignatureInvalid { actor: String, keyid: String },
}

/// Why a checkpoint does not vouch for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint: {0}")]
    Malformed(#[from] crate::note::NoteError),
    #[error("checkpoint (size {size}) has {signed} of {required} required signatures from log group {group:?} (wrong key, or not signed)")]
    Threshold {
        size: u64,
        signed: usize,
        required: usize,
        group: String,
    },
    #[error("checkpoint lacks a valid cosignature by witness {witness:?}")]
    Witness { witness: String },
}

/// Why a newer checkpoint is not an extension of an older one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("the old checkpoint is for log {old:?}, this one is {new:?}")]
    OtherLog { old: String, new: String },
    #[error("the log shrank: the old checkpoint has {old} entries, the new one {new} (history rewritten)")]
    Shrank { old: u64, new: u64 },
    #[error("fork: two checkpoints of size {size} with different roots")]
    Fork { size: u64 },
    #[error("the log holds fewer entries than its checkpoint")]
    Short,
    #[error("not an extension: entries 0..{old} were changed since the old checkpoint (consistency proof fails)")]
    Rewritten { old: u64 },
    #[error(transparent)]
    Range(#[from] ProofError),
}

/// Why a proof cannot be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("{value:?} is not a 32-byte hex hash")]
    NotAHash { value: String },
    #[error("{value} is out of range on this platform")]
    OutOfRange { value: u64 },
    #[error("no entry {index} in a log of size {size}")]
    NoEntry { index: u64, size: u64 },
    #[error("no consistency proof from {old} to {new} in a log of size {len}")]
    NoConsistency { old: u64, new: u64, len: usize },
    #[error("size {size} is beyond the log")]
    BeyondLog { size: u64 },
    #[error("inclusion proof for entry {index} in size {size} does not verify")]
    Inclusion { index: u64, size: u64 },
    #[error("consistency proof from {old} to {new} does not verify")]
    Consistency { old: u64, new: u64 },
}

/// Why the log's signers cannot be named from a root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogTrustError {
    #[error("keys/root.json names no `log` role")]
    NoLogRole,
    #[error("log group {group:?} is not trusted")]
    GroupNotTrusted { group: String },
}

fn index(value: u64) -> Result<usize, ProofError> {
    usize::try_from(value).map_err(|_| ProofError::OutOfRange { value })
}

/// One finding about the log's content. `index` names the entry when one is to blame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    pub what: String,
    /// What kind of problem: the gate maps it to its finding code (`audit-invalid`,
    /// `audit-not-extension`), never the wording.
    pub kind: ProblemKind,
}

/// The kinds of [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// An entry, tile or checkpoint of the log itself does not verify.
    Invalid,
    /// The log is not an extension of a published checkpoint: shrunk, forked, rewritten, for
    /// another log, or no longer vouched for.
    NotExtension,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "entry {i}: {}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

fn problem(index: Option<u64>, what: impl std::fmt::Display) -> Problem {
    Problem {
        index,
        what: what.to_string(),
        kind: ProblemKind::Invalid,
    }
}

/// A [`ProblemKind::NotExtension`] problem.
fn not_extension(what: impl std::fmt::Display) -> Problem {
    Problem {
        index: None,
        what: what.to_string(),
        kind: ProblemKind::NotExtension,
    }
}

/// RFC 8785 canonical bytes of an entry, after checking its required fields: `kind` (a
/// non-empty string) and `time` (RFC 3339). Floats are refused (their canonical form is not
/// worth the ambiguity); entries are at most 65,535 bytes (a tile bundle's limit).
pub fn entry_bytes(v: &Value) -> Result<Vec<u8>, EntryError> {
    check_fields(v)?;
    let bytes = serde_jcs::to_vec(v).map_err(|e| EntryError::Canonicalise(e.to_string()))?;
    if bytes.len() > tiles::MAX_ENTRY {
        return Err(EntryError::TooLarge {
            size: bytes.len(),
            limit: tiles::MAX_ENTRY,
        });
    }
    Ok(bytes)
}

fn check_fields(v: &Value) -> Result<(), EntryError> {
    let o = v.as_object().ok_or(EntryError::NotAnObject)?;
    match o.get("kind") {
        Some(Value::String(k)) if !k.is_empty() => {}
        _ => return Err(EntryError::NoKind),
    }
    match o.get("time") {
        Some(Value::String(t)) if crate::time::parse(t).is_ok() => {}
        _ => return Err(EntryError::NoTime),
    }
    fn no_floats(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.is_i64() || n.is_u64(),
            Value::Array(a) => a.iter().all(no_floats),
            Value::Object(o) => o.values().all(no_floats),
            _ => true,
        }
    }
    if !no_floats(v) {
        return Err(EntryError::Float);
    }
    Ok(())
}

fn keys_sorted(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            let keys: Vec<&String> = o.keys().collect();
            keys.windows(2)
                .all(|w| w[0].encode_utf16().cmp(w[1].encode_utf16()).is_lt())
                && o.values().all(keys_sorted)
        }
        Value::Array(a) => a.iter().all(keys_sorted),
        _ => true,
    }
}

/// What an actor's signature is over: DSSE PAE of the canonical entry without `signatures`.
pub fn entry_signed_bytes(v: &Value) -> Result<Vec<u8>, EntryError> {
    let mut o = v.as_object().cloned().ok_or(EntryError::NotAnObject)?;
    o.remove("signatures");
    let body = serde_jcs::to_vec(&Value::Object(o))
        .map_err(|e| EntryError::Canonicalise(e.to_string()))?;
    Ok(crate::dsse::pae(ENTRY_PAYLOAD_TYPE, &body))
}

/// Adds `key`'s hybrid signature (Ed25519, and ML-DSA-65 when it has one) and its key id as
/// the entry's `actor` when none is set.
pub fn sign_entry(mut v: Value, key: &SigningKey) -> Result<Value, EntryError> {
    let o = v.as_object_mut().ok_or(EntryError::NotAnObject)?;
    o.entry("actor")
        .or_insert_with(|| Value::String(key.classical_public().key_id()));
    o.remove("signatures");
    let msg = entry_signed_bytes(&v)?;
    let sigs: Vec<Value> = key
        .sign(&msg)
        .map_err(|e| EntryError::Sign(e.to_string()))?
        .into_iter()
        .map(|s| serde_json::json!({ "keyid": s.key.key_id(), "sig": crate::crypto::b64(&s.sig) }))
        .collect();
    if let Some(o) = v.as_object_mut() {
        o.insert("signatures".into(), Value::Array(sigs));
    }
    Ok(v)
}

/// Turns one line of `treaty gate --audit-out` (or any JSON object with `kind` and `time`)
/// into an entry: known fields keep their names, the rest go under `details`.
pub fn entry_from_record(mut rec: Map<String, Value>) -> Value {
    let mut e = Map::new();
    for k in [
        "kind",
        "time",
        "actor",
        "subject",
        "commit",
        "verdict",
        "signatures",
    ] {
        if let Some(v) = rec.remove(k) {
            e.insert(k.into(), v);
        }
    }
    if !e.contains_key("commit") {
        if let Some(h) = rec.get("head").cloned() {
            e.insert("commit".into(), h);
        }
    }
    if !e.contains_key("verdict") {
        let v = rec
            .get("status")
            .or_else(|| rec.get("decision"))
            .cloned()
            .or_else(|| {
                rec.get("passed")
                    .and_then(Value::as_bool)
                    .map(|p| Value::String(if p { "pass" } else { "fail" }.into()))
            });
        if let Some(v) = v {
            e.insert("verdict".into(), v);
        }
    }
    if !rec.is_empty() {
        e.insert("details".into(), Value::Object(rec));
    }
    Value::Object(e)
}

/// Who may vouch for the log, from a verified root.
#[derive(Debug, Clone, Default)]
pub struct LogTrust {
    /// Members of the `log` group: (member id, Ed25519 key).
    pub signers: Vec<(String, PublicKey)>,
    pub threshold: usize,
    pub group: String,
    /// Every key of every trusted group, by key id, to check actors' entry signatures.
    pub actors: std::collections::HashMap<String, (String, PublicKey)>,
    /// Extra witnesses whose cosignature is required.
    pub witnesses: Vec<VerifierKey>,
}

impl LogTrust {
    /// From the trust established over a governance tree.
    pub fn from_trust(t: &crate::trust::Trust) -> Result<Self, LogTrustError> {
        let name = t.root.roles.get(LOG_ROLE).ok_or(LogTrustError::NoLogRole)?;
        let g = t
            .groups
            .get(name)
            .ok_or_else(|| LogTrustError::GroupNotTrusted {
                group: name.clone(),
            })?;
        let mut actors = std::collections::HashMap::new();
        for grp in t.groups.values() {
            for m in &grp.members {
                for (k, id) in m.keys_with_ids() {
                    if !t.revoked.contains_key(id) {
                        actors.insert(id.to_owned(), (m.id.clone(), k.clone()));
                    }
                }
            }
        }
        Ok(Self {
            signers: g
                .members
                .iter()
                .filter(|m| !m.keys_with_ids().any(|(_, id)| t.revoked.contains_key(id)))
                .map(|m| (m.id.clone(), m.classical.clone()))
                .collect(),
            threshold: g.threshold,
            group: name.clone(),
            actors,
            witnesses: Vec::new(),
        })
    }
}

/// A checkpoint's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointInfo {
    pub origin: String,
    pub size: u64,
    pub root: String,
    /// Log group members whose signature verified.
    pub signed_by: Vec<String>,
    pub witnessed_by: Vec<String>,
    /// When each witness says it cosigned (C2SP cosignature/v1 timestamp, RFC 3339), by
    /// witness name; absent for a plain (0x01) witness line, which carries no time.
    pub cosigned_at: std::collections::BTreeMap<String, String>,
}

/// Verifies a checkpoint note's signatures: a threshold of distinct log group members (key
/// name = the origin) and every required witness.
pub fn check_checkpoint(
    bytes: &[u8],
    trust: &LogTrust,
) -> Result<(Checkpoint, CheckpointInfo), CheckpointError> {
    let note = Note::parse(bytes)?;
    let cp = Checkpoint::parse(&note.text)?;
    // The key's kind (Ed25519 0x01, or ECDSA 0x02 for a TPM-resident key) says how its line
    // is checked: the note verifies it, not a raw key check here. One signature counts for one
    // member only (an ECDSA signature also verifies under a key recovered from it).
    let mut used: Vec<Vec<u8>> = Vec::new();
    let mut signed_by: Vec<String> = Vec::new();
    for (m, k) in &trust.signers {
        let Ok(vk) = VerifierKey::from_key(&cp.origin, k) else {
            continue;
        };
        let fresh = note
            .lines_by(&vk)
            .map(|l| crate::note::signature_identity(&l.2))
            .find(|id| !used.contains(id));
        if let Some(id) = fresh {
            used.push(id);
            signed_by.push(m.clone());
        }
    }
    if signed_by.len() < trust.threshold.max(1) {
        return Err(CheckpointError::Threshold {
            size: cp.size,
            signed: signed_by.len(),
            required: trust.threshold.max(1),
            group: trust.group.clone(),
        });
    }
    let mut witnessed_by = Vec::new();
    let mut cosigned_at = std::collections::BTreeMap::new();
    for w in &trust.witnesses {
        // The key's kind says how its line is checked: a C2SP cosignature/v1 (0x04) or a
        // plain Ed25519 line (0x01, what `treaty audit cosign` wrote before).
        let Some((_, at)) = note.verified(std::slice::from_ref(w)).into_iter().next() else {
            return Err(CheckpointError::Witness {
                witness: w.name.clone(),
            });
        };
        let when = at
            .and_then(|t| i64::try_from(t).ok())
            .and_then(crate::time::Instant::from_unix)
            .map(crate::time::format);
        if let Some(when) = when {
            cosigned_at.insert(w.name.clone(), when);
        }
        witnessed_by.push(w.name.clone());
    }
    let info = CheckpointInfo {
        origin: cp.origin.clone(),
        size: cp.size,
        root: hex::encode(cp.root),
        signed_by,
        witnessed_by,
        cosigned_at,
    };
    Ok((cp, info))
}

/// Checks one stored entry: JSON, canonical (RFC 8785), required fields, and the actor's
/// signatures where the key is known.
pub fn check_entry(bytes: &[u8], trust: &LogTrust) -> Result<Value, EntryError> {
    let v: Value = crate::json::parse_value(bytes)?;
    check_fields(&v)?;
    // For integer-only JSON, RFC 8785 is compact serde_json output with every object's keys
    // in UTF-16 order (the parse keeps the order it read): check the order, then the bytes.
    // This is the same verdict as re-canonicalising (a unit test holds them equal), at a
    // fraction of the cost.
    if !keys_sorted(&v) || serde_json::to_vec(&v).ok().as_deref() != Some(bytes) {
        return Err(EntryError::NotCanonical);
    }
    if let Some(sigs) = v.get("signatures") {
        let sigs = sigs.as_array().ok_or(EntryError::SignaturesNotAList)?;
        let msg = entry_signed_bytes(&v)?;
        for s in sigs {
            let (Some(kid), Some(sig)) = (
                s.get("keyid").and_then(Value::as_str),
                s.get("sig").and_then(Value::as_str),
            ) else {
                return Err(EntryError::SignatureIncomplete);
            };
            if let Some((who, key)) = trust.actors.get(kid) {
                let sig =
                    crate::crypto::unb64(sig).map_err(|_| EntryError::SignatureNotBase64 {
                        keyid: kid.to_owned(),
                    })?;
                if !key.verify(&msg, &sig) {
                    return Err(EntryError::SignatureInvalid {
                        actor: who.clone(),
                        keyid: kid.to_owned(),
                    });
                }
            }
        }
    }
    Ok(v)
}

/// What `audit verify` concluded.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    /// Entries in the log.
    pub size: u64,
    pub root: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointInfo>,
    pub problems: Vec<Problem>,
    pub notes: Vec<String>,
}

/// Checks that `old` (a checkpoint that verified) is a prefix of the log in `tree`, whose
/// newest checkpoint is `new`: same origin, not larger, and (RFC 9162 §2.1.4) a consistency
/// proof from the recomputed tree verifies between the two roots. Equal sizes with different
/// roots are a fork.
pub fn check_extension(
    tree: &merkle::Tree,
    old: &Checkpoint,
    new: &Checkpoint,
) -> Result<(), ExtensionError> {
    if old.origin != new.origin {
        return Err(ExtensionError::OtherLog {
            old: old.origin.clone(),
            new: new.origin.clone(),
        });
    }
    if old.size > new.size {
        return Err(ExtensionError::Shrank {
            old: old.size,
            new: new.size,
        });
    }
    if old.size == new.size {
        return if old.root == new.root {
            Ok(())
        } else {
            Err(ExtensionError::Fork { size: old.size })
        };
    }
    if old.size == 0 {
        return Ok(());
    }
    let (m, n) = (index(old.size)?, index(new.size)?);
    let proof = tree.consistency_proof(m, n).ok_or(ExtensionError::Short)?;
    if merkle::verify_consistency(old.size, new.size, &proof, &old.root, &new.root) {
        Ok(())
    } else {
        Err(ExtensionError::Rewritten { old: old.size })
    }
}

/// An inclusion proof, as `treaty audit prove` prints it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    pub leaf_hash: String,
    pub root: String,
    pub proof: Vec<String>,
}

/// A consistency proof, as `treaty audit consistency` prints it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub old_root: String,
    pub new_root: String,
    pub proof: Vec<String>,
}

fn hex_hashes(v: &[Hash]) -> Vec<String> {
    v.iter().map(hex::encode).collect()
}

fn unhex_hash(s: &str) -> Result<Hash, ProofError> {
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ProofError::NotAHash {
            value: s.to_owned(),
        })
}

pub fn inclusion_proof(
    tree: &merkle::Tree,
    index: u64,
    size: u64,
) -> Result<InclusionProof, ProofError> {
    let (i, n) = (self::index(index)?, self::index(size)?);
    let proof = tree
        .inclusion_proof(i, n)
        .ok_or(ProofError::NoEntry { index, size })?;
    Ok(InclusionProof {
        index,
        size,
        leaf_hash: hex::encode(tree.leaves()[i]),
        root: hex::encode(tree.root_at(n).ok_or(ProofError::BeyondLog { size })?),
        proof: hex_hashes(&proof),
    })
}

pub fn consistency_proof(
    tree: &merkle::Tree,
    old: u64,
    new: u64,
) -> Result<ConsistencyProof, ProofError> {
    let (m, n) = (index(old)?, index(new)?);
    let proof = tree
        .consistency_proof(m, n)
        .ok_or(ProofError::NoConsistency {
            old,
            new,
            len: tree.len(),
        })?;
    Ok(ConsistencyProof {
        old_size: old,
        new_size: new,
        old_root: hex::encode(tree.root_at(m).ok_or(ProofError::BeyondLog { size: old })?),
        new_root: hex::encode(tree.root_at(n).ok_or(ProofError::BeyondLog { size: new })?),
        proof: hex_hashes(&proof),
    })
}

/// Checks a printed inclusion proof (optionally against a known root).
pub fn check_inclusion(p: &InclusionProof) -> Result<(), ProofError> {
    let proof: Vec<Hash> = p
        .proof
        .iter()
        .map(|h| unhex_hash(h))
        .collect::<Result<_, _>>()?;
    let leaf = unhex_hash(&p.leaf_hash)?;
    let root = unhex_hash(&p.root)?;
    if merkle::verify_inclusion(p.index, p.size, &leaf, &proof, &root) {
        Ok(())
    } else {
        Err(ProofError::Inclusion {
            index: p.index,
            size: p.size,
        })
    }
}

/// Checks a printed consistency proof.
pub fn check_consistency(p: &ConsistencyProof) -> Result<(), ProofError> {
    let proof: Vec<Hash> = p
        .proof
        .iter()
        .map(|h| unhex_hash(h))
        .collect::<Result<_, _>>()?;
    let (a, b) = (unhex_hash(&p.old_root)?, unhex_hash(&p.new_root)?);
    if merkle::verify_consistency(p.old_size, p.new_size, &proof, &a, &b) {
        Ok(())
    } else {
        Err(ProofError::Consistency {
            old: p.old_size,
            new: p.new_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_canonical_and_refuse_floats_and_missing_fields() {
        let v = serde_json::json!({"time": "2026-01-01T00:00:00Z", "kind": "gate.verdict", "b": [1, {"z": 1, "a": "é"}]});
        let b = entry_bytes(&v).unwrap();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"b":[1,{"a":"é","z":1}],"kind":"gate.verdict","time":"2026-01-01T00:00:00Z"}"#
        );
        assert!(entry_bytes(
            &serde_json::json!({"kind": "x", "time": "2026-01-01T00:00:00Z", "f": 1.5})
        )
        .is_err());
        assert!(entry_bytes(&serde_json::json!({"kind": "x"})).is_err());
        assert!(
            entry_bytes(&serde_json::json!({"kind": "", "time": "2026-01-01T00:00:00Z"})).is_err()
        );
        assert!(entry_bytes(&serde_json::json!([1])).is_err());
    }

    #[test]
    fn the_fast_canonical_check_agrees_with_rfc_8785() {
        let trust = LogTrust::default();
        let cases = [
            r#"{"kind":"x","time":"2026-01-01T00:00:00Z"}"#,
            r#"{"time":"2026-01-01T00:00:00Z","kind":"x"}"#,
            r#"{"kind":"x", "time":"2026-01-01T00:00:00Z"}"#,
            r#"{"a":"\u001f\n\"é€😀/","kind":"x","time":"2026-01-01T00:00:00Z"}"#,
            r#"{"a":"\u001F","kind":"x","time":"2026-01-01T00:00:00Z"}"#,
            r#"{"a":"\/","kind":"x","time":"2026-01-01T00:00:00Z"}"#,
            r#"{"\u20ac":1,"kind":"x","time":"2026-01-01T00:00:00Z","😀":2,"ﬀ":3}"#,
            r#"{"kind":"x","time":"2026-01-01T00:00:00Z","ﬀ":3,"😀":2}"#,
            r#"{"kind":"x","n":-0,"time":"2026-01-01T00:00:00Z"}"#,
            r#"{"kind":"x","n":10,"time":"2026-01-01T00:00:00Z"}"#,
            r#"{"kind":"x","n":1e1,"time":"2026-01-01T00:00:00Z"}"#,
            r#"{"kind":"x","time":"2026-01-01T00:00:00Z","z":{"b":1,"a":2}}"#,
        ];
        for c in cases {
            let fast = check_entry(c.as_bytes(), &trust).is_ok();
            let slow = crate::json::parse_value(c.as_bytes())
                .ok()
                .and_then(|v| entry_bytes(&v).ok())
                .is_some_and(|b| b == c.as_bytes());
            assert_eq!(fast, slow, "{c}");
        }
    }

    #[test]
    fn signed_entries_verify_and_tampered_ones_do_not() {
        let key = SigningKey::generate("ci-1").unwrap();
        let v = sign_entry(
            serde_json::json!({"kind": "release.sealed", "time": "2026-01-01T00:00:00Z"}),
            &key,
        )
        .unwrap();
        let mut trust = LogTrust::default();
        for k in [key.classical_public()]
            .into_iter()
            .chain(key.mldsa_public())
        {
            trust.actors.insert(k.key_id(), ("ci-1".into(), k));
        }
        let bytes = entry_bytes(&v).unwrap();
        assert!(check_entry(&bytes, &trust).is_ok());
        let forged = String::from_utf8(bytes)
            .unwrap()
            .replace("release.sealed", "release.sealeD");
        assert!(matches!(
            check_entry(forged.as_bytes(), &trust),
            Err(EntryError::SignatureInvalid { .. })
        ));
        assert_eq!(
            check_entry(
                b"{\"time\":\"2026-01-01T00:00:00Z\",\"kind\":\"x\"}",
                &trust
            ),
            Err(EntryError::NotCanonical)
        );
    }

    #[test]
    fn gate_audit_records_map_to_entries() {
        let rec: Map<String, Value> = crate::json::from_str(
            r#"{"kind":"gate.verdict","time":"2026-01-01T00:00:00Z","gate":"schema","status":"pass","base":"a","head":"b"}"#,
        )
        .unwrap();
        let e = entry_from_record(rec);
        assert_eq!(e["commit"], "b");
        assert_eq!(e["verdict"], "pass");
        assert_eq!(e["details"]["gate"], "schema");
        assert!(entry_bytes(&e).is_ok());
    }
}
