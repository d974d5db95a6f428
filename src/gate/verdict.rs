//! Signed gate verdicts.
//!
//! A status on a forge can be posted by anyone with write access, so a green check proves
//! little by itself. A signed verdict is a DSSE envelope over an in-toto Statement v1 whose
//! subject is the head commit and whose predicate (`https://treaty.dev/verdict/v1`) carries the
//! base, the head, every gate's status and findings, and this tool's version; it is signed by a
//! member of the group the base revision's root names for the `verdict` role, and anyone can
//! check it later against the repository (`treaty verdict verify`).

use serde_json::{json, Value};

use crate::crypto::SigningKey;
use crate::dsse::{self, Envelope};
use crate::governance::model::Root;
use crate::source::{Repo, Tree};

/// The predicate type of a gate verdict.
pub const VERDICT_TYPE: &str = "https://treaty.dev/verdict/v1";

/// Why a verdict cannot be made or checked (not "it is not authentic": that is a
/// [`Checked`] with `authentic: false`).
#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    /// The base revision has no usable root, or its root names no usable verdict group.
    #[error("no verdict group at the base revision: {0}")]
    NoVerdictGroup(String),
    /// The key is not a member of the base root's verdict group.
    #[error("key of {member:?} is not a member of the verdict group {group:?}")]
    NotAMember { member: String, group: String },
    /// The file is not a verdict envelope at all.
    #[error("not a verdict envelope: {0}")]
    Malformed(String),
    /// The verdict names a base commit this repository cannot resolve.
    #[error("the verdict's base revision: {0}")]
    Base(#[from] crate::source::SourceError),
    #[error("cannot encode the verdict: {0}")]
    Encode(#[from] serde_json::Error),
    /// The key could not sign (a TPM-resident key whose TPM is absent, locked out, or holds
    /// another key).
    #[error("cannot sign the verdict: {0}")]
    Key(#[from] crate::crypto::KeyError),
}

fn verdict_group(base: &Tree) -> Result<crate::governance::model::Group, VerdictError> {
    // The gate run's one anchor: base's root, pinned.
    let anchor =
        super::base_anchor(base).map_err(|e| VerdictError::NoVerdictGroup(e.to_string()))?;
    let (trust, findings) = crate::trust::load(base, &anchor, crate::time::now());
    let trust = trust.ok_or_else(|| {
        VerdictError::NoVerdictGroup(
            findings
                .first()
                .map_or_else(|| "no root at base".to_owned(), ToString::to_string),
        )
    })?;
    let name = trust
        .root
        .role_group(crate::governance::model::Role::Verdict)
        .ok_or_else(|| {
            VerdictError::NoVerdictGroup("the base root names no verdict role".into())
        })?;
    trust.groups.get(name).cloned().ok_or_else(|| {
        VerdictError::NoVerdictGroup(format!(
            "the verdict role names group {name:?}, which is not usable at the base revision"
        ))
    })
}

/// Whether `key` belongs to the base root's verdict group (checked before the gate runs, so a
/// wrong key is refused as a finding about key membership, exit 1, with nothing written).
pub fn is_member(base: &Tree, key: &SigningKey) -> Result<bool, VerdictError> {
    let group = verdict_group(base)?;
    Ok(group
        .members
        .iter()
        .any(|m| m.classical == key.classical_public() && m.ml_dsa_65 == key.mldsa_public()))
}

/// Signs `report` with `key`, a member of the base root's verdict group. Returns the envelope.
pub fn sign(
    report: &super::GateReport,
    base: &Tree,
    key: &SigningKey,
) -> Result<Vec<u8>, VerdictError> {
    let group = verdict_group(base)?;
    let member = group
        .members
        .iter()
        .any(|m| m.classical == key.classical_public() && m.ml_dsa_65 == key.mldsa_public());
    if !member {
        return Err(VerdictError::NotAMember {
            member: key.member_id.clone(),
            group: group.name.clone(),
        });
    }
    let statement = json!({
        "_type": crate::statement::STATEMENT_TYPE,
        "subject": [{ "name": format!("git-commit:{}", report.head_commit), "digest": { "gitCommit": report.head_commit } }],
        "predicateType": VERDICT_TYPE,
        "predicate": {
            "spec_version": crate::SPEC_VERSION,
            "tool": report.tool,
            "base_commit": report.base_commit,
            "head_commit": report.head_commit,
            "target": report.target,
            "promotion_lane": report.promotion_lane,
            "passed": report.passed,
            "pending": report.pending,
            "gates": report.gates,
            "verdict_group": { "name": group.name, "group_id": group.group_id },
        },
    });
    let payload = serde_json::to_vec(&statement)?;
    let signatures = dsse::sign(key, dsse::PAYLOAD_TYPE, &payload)?;
    Ok(Envelope {
        payload,
        signatures,
    }
    .to_bytes())
}

/// What `treaty verdict verify` established.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Checked {
    pub authentic: bool,
    pub reason: Option<String>,
    pub signed_by: Vec<String>,
    pub predicate: Value,
}

/// Checks a verdict envelope against the verdict group of its base revision in `repo`.
pub fn verify(repo: &Repo, bytes: &[u8]) -> Result<Checked, VerdictError> {
    let env = Envelope::parse(bytes).map_err(|e| VerdictError::Malformed(e.to_string()))?;
    let st: Value = crate::json::from_slice(&env.payload)
        .map_err(|e| VerdictError::Malformed(format!("payload is not JSON: {e}")))?;
    let bad = |why: &str, p: Value| {
        Ok(Checked {
            authentic: false,
            reason: Some(why.to_owned()),
            signed_by: vec![],
            predicate: p,
        })
    };
    let pred = st.get("predicate").cloned().unwrap_or(Value::Null);
    if st.get("predicateType").and_then(Value::as_str) != Some(VERDICT_TYPE) {
        return bad("not a treaty gate verdict (predicateType)", pred);
    }
    let head = pred
        .get("head_commit")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let subject_ok = st["subject"][0]["digest"]["gitCommit"].as_str() == Some(head.as_str())
        && st["subject"].as_array().is_some_and(|s| s.len() == 1);
    if !subject_ok {
        return bad("the subject is not the verdict's head commit", pred);
    }
    let base_rev = pred
        .get("base_commit")
        .and_then(Value::as_str)
        .ok_or_else(|| VerdictError::Malformed("the verdict names no base commit".into()))?;
    let base = repo.resolve(base_rev)?;
    let base_tree = repo.tree_at(base)?;
    let group = verdict_group(&base_tree)?;
    if pred["verdict_group"]["group_id"].as_str() != Some(group.group_id.as_str()) {
        return bad(
            "signed under another verdict group than the base revision's",
            pred,
        );
    }
    let revoked = base_tree
        .file(crate::trust::ROOT_PATH)
        .and_then(|b| crate::json::from_slice::<Root>(&b).ok())
        .map(|r| {
            r.revoked
                .into_iter()
                .map(|x| (x.keyid.clone(), x))
                .collect()
        })
        .unwrap_or_default();
    let (tallies, _) = crate::verify::tally(&env, "verdict", "verdict", &[&group], &revoked, true);
    let Some(t) = tallies.first() else {
        return bad("no verdict group", pred);
    };
    if !t.met {
        return Ok(Checked {
            authentic: false,
            reason: Some(format!(
                "group {} has {}/{} valid signatures",
                t.name,
                t.signed.len(),
                t.threshold
            )),
            signed_by: t.signed.clone(),
            predicate: pred,
        });
    }
    Ok(Checked {
        authentic: true,
        reason: None,
        signed_by: t.signed.clone(),
        predicate: pred,
    })
}
