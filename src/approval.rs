//! Approval: does this envelope carry, for each required group, a threshold of distinct members'
//! valid signatures over exactly these bytes, this path, this version and these groups?
//!
//! Owns threshold counting (docs/model.md § When a file is approved; docs/spec.md § 4): which
//! signature entries count for which member, hybrid members (both signatures or nothing),
//! revoked keys, and the statement checks. It knows nothing of delegations or root chains: the
//! caller ([`crate::trust`] for root versions, [`crate::verify`] for documents) says which groups
//! must approve. It sits below both, so the signer and every verifier share one rule.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

use crate::crypto::PublicKey;
use crate::diag::{Code, Finding};
use crate::dsse::Envelope;
use crate::governance::model::{Group, Revocation, RevocationReason};
use crate::statement::{GroupRef, Statement, PREDICATE_TYPE, STATEMENT_TYPE};
use crate::time::Instant;

/// How one required group stands for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTally {
    pub name: String,
    pub group_id: String,
    pub threshold: usize,
    /// Members whose signatures count, sorted.
    pub signed: Vec<String>,
    /// Members who have not (validly) signed and could still, sorted. With early stopping this
    /// may include members who did sign but were not checked once the threshold was met.
    pub may_sign: Vec<String>,
    pub met: bool,
}

/// The verdict on one approval envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judged {
    pub approved: bool,
    pub groups: Vec<GroupTally>,
    pub findings: Vec<Finding>,
    /// The statement's `expires`, when the envelope parsed and has one.
    pub expires: Option<String>,
}

impl Judged {
    /// One line: the first error, or the tallies.
    pub fn summary(&self) -> String {
        if let Some(f) = self
            .findings
            .iter()
            .find(|f| f.is_error() && f.code != Code::ThresholdNotMet)
        {
            return f.message.clone();
        }
        self.groups
            .iter()
            .map(|g| format!("group {} has {}/{}", g.name, g.signed.len(), g.threshold))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Judges one approval envelope against the groups it must satisfy.
///
/// `stmt_path` is the path the statement must name; `sig_path` is where the envelope was read
/// (they differ only for kept root versions). With `exhaustive` false, checking a group stops
/// once its threshold is met (the verdict is the same; the list of signers may be shorter).
#[allow(clippy::too_many_arguments)]
pub fn judge_approval(
    stmt_path: &str,
    sig_path: &str,
    bytes: &[u8],
    version: u64,
    required: &[&Group],
    refs: &[GroupRef],
    sig: Option<&[u8]>,
    revoked: &HashMap<String, Revocation>,
    at: Instant,
    exhaustive: bool,
) -> Judged {
    let mut findings = Vec::new();
    let empty_tallies = || {
        required
            .iter()
            .map(|g| GroupTally {
                name: g.name.clone(),
                group_id: g.group_id.clone(),
                threshold: g.threshold,
                signed: vec![],
                may_sign: g.members.iter().map(|m| m.id.clone()).collect(),
                met: false,
            })
            .collect::<Vec<_>>()
    };
    let Some(sig) = sig else {
        findings.push(
            Finding::error(
                Code::SignatureMissing,
                Some(stmt_path),
                format!("no approval: {sig_path} is absent"),
            )
            .help(format!(
                "members of the required groups sign it with `treaty sign {stmt_path} --key KEY`"
            )),
        );
        return Judged {
            approved: false,
            groups: empty_tallies(),
            findings,
            expires: None,
        };
    };
    let env = match Envelope::parse(sig) {
        Ok(e) => e,
        Err(e) => {
            let code = match &e {
                crate::dsse::EnvelopeError::Json(j) if j.is_duplicate_key() => Code::DuplicateKey,
                _ => Code::EnvelopeMalformed,
            };
            findings.push(Finding::error(code, Some(sig_path), e.to_string()));
            return Judged {
                approved: false,
                groups: empty_tallies(),
                findings,
                expires: None,
            };
        }
    };
    let stmt = match Statement::parse(&env.payload) {
        Ok(s) => s,
        Err(e) => {
            let code = if e.is_duplicate_key() {
                Code::DuplicateKey
            } else {
                Code::StatementMalformed
            };
            findings.push(Finding::error(
                code,
                Some(sig_path),
                format!("payload is not an approval statement: {e}"),
            ));
            return Judged {
                approved: false,
                groups: empty_tallies(),
                findings,
                expires: None,
            };
        }
    };
    let mut statement_ok = true;
    let mut bad = |f: Finding, findings: &mut Vec<Finding>| {
        statement_ok = false;
        findings.push(f);
    };
    if stmt.type_ != STATEMENT_TYPE
        || stmt.predicate_type != PREDICATE_TYPE
        || stmt.subject.len() != 1
    {
        bad(
            Finding::error(
                Code::StatementMalformed,
                Some(sig_path),
                format!(
                    "statement must be {STATEMENT_TYPE} with predicate {PREDICATE_TYPE} and exactly one subject"
                ),
            ),
            &mut findings,
        );
    }
    if let Err(m) = crate::governance::check_spec_version(&stmt.predicate.spec_version) {
        bad(
            Finding::error(Code::SpecVersionUnsupported, Some(sig_path), m.to_string()),
            &mut findings,
        );
    }
    // Only a statement with its single subject is compared (docs/spec.md § 6 item 2); with
    // none or several it is already malformed, and judging the first of several would report
    // mismatches about a subject the spec does not define.
    if let [subject] = stmt.subject.as_slice() {
        if subject.name != stmt_path {
            bad(
                Finding::error(
                    Code::SubjectMismatch,
                    Some(sig_path),
                    format!("the approval is for {:?}, not {stmt_path:?}", subject.name),
                )
                .help("an approval cannot be copied to another file; sign this file itself"),
                &mut findings,
            );
        }
        let want = Statement::new(stmt_path, bytes, version, vec![], None);
        let want_digest = want.subject.first().map(|s| &s.digest);
        if Some(&subject.digest) != want_digest {
            bad(
                Finding::error(
                    Code::DigestMismatch,
                    Some(stmt_path),
                    "the file's bytes are not the bytes that were approved (changed after signing)",
                )
                .help("re-approve the new content: `treaty sign` by each required signer"),
                &mut findings,
            );
        }
    }
    if stmt.predicate.version != version {
        bad(
            Finding::error(
                Code::StatementVersionMismatch,
                Some(sig_path),
                format!(
                    "the approval is for version {}, the file is version {version}",
                    stmt.predicate.version
                ),
            ),
            &mut findings,
        );
    }
    let want: BTreeSet<&GroupRef> = refs.iter().collect();
    let have: BTreeSet<&GroupRef> = stmt.predicate.groups.iter().collect();
    if want != have || stmt.predicate.groups.len() != have.len() {
        let names = |s: &BTreeSet<&GroupRef>| {
            s.iter()
                .map(|g| format!("{}={}", g.name, g.group_id))
                .collect::<Vec<_>>()
                .join(", ")
        };
        bad(
            Finding::error(
                Code::StatementGroupsMismatch,
                Some(sig_path),
                format!(
                    "the approval names groups [{}] but this file requires [{}]",
                    names(&have),
                    names(&want)
                ),
            )
            .help("groups or the delegation changed since signing; collect approvals again"),
            &mut findings,
        );
    }
    if let Some(exp) = &stmt.predicate.expires {
        match crate::time::parse(exp) {
            Ok(t) if at >= t => bad(
                Finding::error(
                    Code::ApprovalExpired,
                    Some(sig_path),
                    format!("the approval expired at {exp}"),
                )
                .help("renew it: the required signers sign again with a later expiry"),
                &mut findings,
            ),
            Ok(_) => {}
            Err(m) => bad(
                Finding::error(
                    Code::StatementMalformed,
                    Some(sig_path),
                    format!("expires: {m}"),
                ),
                &mut findings,
            ),
        }
    }

    let (groups, mut tally_findings) =
        tally(&env, stmt_path, sig_path, required, revoked, exhaustive);
    findings.append(&mut tally_findings);
    let approved = statement_ok && groups.iter().all(|g| g.met);
    Judged {
        approved,
        groups,
        findings,
        expires: stmt.predicate.expires.clone(),
    }
}

/// Counts distinct members per required group whose signatures verify over `env`.
pub(crate) fn tally(
    env: &Envelope,
    stmt_path: &str,
    sig_path: &str,
    required: &[&Group],
    revoked: &HashMap<String, Revocation>,
    exhaustive: bool,
) -> (Vec<GroupTally>, Vec<Finding>) {
    let msg = env.signed_bytes();
    let mut findings = Vec::new();
    let mut known: BTreeSet<String> = BTreeSet::new();
    for g in required {
        for m in &g.members {
            for (_, kid) in m.keys_with_ids() {
                known.insert(kid.to_owned());
            }
        }
    }
    // Entries whose hint names no key of any required group: tried against keys that found no
    // signature under their own id, because a keyid is only a hint.
    let unmatched: Vec<usize> = (0..env.signatures.len())
        .filter(|&i| !known.contains(&env.signatures[i].keyid))
        .collect();
    let mut used_unmatched: BTreeSet<usize> = BTreeSet::new();
    let mut invalid_hinted = 0usize;
    let mut verified: HashMap<String, bool> = HashMap::new();
    let mut key_signed =
        |k: &PublicKey, kid: &str, used: &mut BTreeSet<usize>, invalid: &mut usize| -> bool {
            if let Some(&v) = verified.get(kid) {
                return v;
            }
            let mut ok = false;
            for s in env.signatures.iter().filter(|s| s.keyid == kid) {
                if k.verify(&msg, &s.sig) {
                    ok = true;
                    break;
                }
                *invalid += 1;
            }
            if !ok {
                let want_len = match k {
                    PublicKey::Ed25519(_) => crate::crypto::ED25519_SIG_LEN,
                    PublicKey::MlDsa65(_) => crate::crypto::MLDSA65_SIG_LEN,
                };
                for &i in &unmatched {
                    let s = &env.signatures[i];
                    if s.sig.len() == want_len && k.verify(&msg, &s.sig) {
                        used.insert(i);
                        ok = true;
                        break;
                    }
                }
            }
            verified.insert(kid.to_owned(), ok);
            ok
        };

    let mut tallies = Vec::new();
    for g in required {
        let mut signed = Vec::new();
        let mut may_sign = Vec::new();
        for m in &g.members {
            if !exhaustive && signed.len() >= g.threshold {
                may_sign.push(m.id.clone());
                continue;
            }
            if let Some((_, kid)) = m
                .keys_with_ids()
                .find(|(_, kid)| revoked.contains_key(*kid))
            {
                if env
                    .signatures
                    .iter()
                    .any(|s| m.keys_with_ids().any(|(_, id)| id == s.keyid))
                {
                    findings.push(Finding::warning(
                        Code::RevokedKey,
                        Some(sig_path),
                        format!("member {:?} of {:?} signed, but key {kid} is revoked; it counts for nothing", m.id, g.name),
                    ));
                }
                continue;
            }
            let mut keys = m.keys_with_ids();
            let ed_ok = keys.next().is_some_and(|(k, kid)| {
                key_signed(k, kid, &mut used_unmatched, &mut invalid_hinted)
            });
            let ml_ok = match keys.next() {
                Some((k, kid)) => key_signed(k, kid, &mut used_unmatched, &mut invalid_hinted),
                None => true,
            };
            if ed_ok && ml_ok {
                signed.push(m.id.clone());
            } else {
                if ed_ok != ml_ok && m.ml_dsa_65.is_some() {
                    let (has, lacks) = if ed_ok {
                        ("ed25519", "ml-dsa-65")
                    } else {
                        ("ml-dsa-65", "ed25519")
                    };
                    findings.push(
                        Finding::warning(
                            Code::HybridIncomplete,
                            Some(sig_path),
                            format!("member {:?} of {:?} has a valid {has} signature but no valid {lacks} one; a hybrid member needs both", m.id, g.name),
                        )
                        .help(format!("{} signs again with the full key: `treaty sign {stmt_path} --key KEY`", m.id)),
                    );
                }
                may_sign.push(m.id.clone());
            }
        }
        signed.sort();
        may_sign.sort();
        let met = signed.len() >= g.threshold;
        if !met {
            findings.push(
                Finding::error(
                    Code::ThresholdNotMet,
                    Some(stmt_path),
                    format!(
                        "group {:?} has {} of {} required signatures{}",
                        g.name,
                        signed.len(),
                        g.threshold,
                        if signed.is_empty() {
                            String::new()
                        } else {
                            format!(" (signed: {})", signed.join(", "))
                        }
                    ),
                )
                .help(format!("may still sign: {}", may_sign.join(", "))),
            );
        }
        tallies.push(GroupTally {
            name: g.name.clone(),
            group_id: g.group_id.clone(),
            threshold: g.threshold,
            signed,
            may_sign,
            met,
        });
    }
    if invalid_hinted > 0 {
        findings.push(Finding::warning(
            Code::InvalidSignature,
            Some(sig_path),
            format!("{invalid_hinted} signature entr{} name a member key but do not verify (forged, altered, or for other content)", if invalid_hinted == 1 { "y" } else { "ies" }),
        ));
    }
    let unknown = unmatched
        .iter()
        .filter(|i| !used_unmatched.contains(i))
        .count();
    if unknown > 0 && exhaustive {
        findings.push(Finding::warning(
            Code::UnknownKey,
            Some(sig_path),
            format!("{unknown} signature entr{} verify against no key of a required group and were ignored", if unknown == 1 { "y" } else { "ies" }),
        ));
    }
    (tallies, findings)
}

/// Revocations that still apply to a signature proven to exist at `proven` (Unix seconds): a
/// compromised key never counts; a retired key counts when the proof predates its retirement.
pub fn effective_revocations(
    revoked: &HashMap<String, Revocation>,
    proven: Option<i64>,
) -> HashMap<String, Revocation> {
    revoked
        .iter()
        .filter(|(_, r)| {
            if r.reason == RevocationReason::Compromised {
                return true;
            }
            let Some(p) = proven else { return true };
            let Ok(t) = crate::time::parse(&r.time) else {
                return true;
            };
            t.unix() <= p
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
