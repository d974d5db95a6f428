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

/// What an approval must be about: the file, its bytes and version, and the groups its statement
/// must name (docs/spec.md § 6).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The path the statement must name.
    pub path: &'a str,
    /// Where the envelope was read (differs from `path.sig` only for kept root versions).
    pub sig_path: &'a str,
    pub bytes: &'a [u8],
    pub version: u64,
    /// The `name=group_id` pairs the statement must list, exactly.
    pub refs: &'a [GroupRef],
}

/// Who must approve, and under which conditions.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Each group must reach its threshold.
    pub required: &'a [&'a Group],
    /// Revoked key ids (already narrowed by [`effective_revocations`]); they count for nothing.
    pub revoked: &'a HashMap<String, Revocation>,
    /// The instant an expiry is judged at.
    pub at: Instant,
    /// Check every signature (for `status`), not only up to each threshold. The verdict is the
    /// same either way; only the list of signers may be shorter.
    pub exhaustive: bool,
}

/// Judges one approval envelope (`sig`, `None` when absent) against the groups it must satisfy:
/// open it, check the statement against the subject, then count signatures per group.
pub fn judge_approval(subject: &Subject, rules: &Rules, sig: Option<&[u8]>) -> Judged {
    let (env, stmt) = match open(subject, sig) {
        Ok(opened) => opened,
        Err(finding) => {
            return Judged {
                approved: false,
                groups: empty_tallies(rules.required),
                findings: vec![finding],
                expires: None,
            }
        }
    };
    let mut findings = check_statement(&stmt, subject, rules.at);
    let statement_ok = findings.is_empty();
    let (groups, mut tally_findings) = tally(
        &env,
        subject.path,
        subject.sig_path,
        rules.required,
        rules.revoked,
        rules.exhaustive,
    );
    findings.append(&mut tally_findings);
    Judged {
        approved: statement_ok && groups.iter().all(|g| g.met),
        groups,
        findings,
        expires: stmt.predicate.expires,
    }
}

/// Every required group with no signer yet: the tallies of an envelope that could not be read.
fn empty_tallies(required: &[&Group]) -> Vec<GroupTally> {
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
        .collect()
}

/// Step 1: the envelope exists, is DSSE, and carries an approval statement.
fn open(subject: &Subject, sig: Option<&[u8]>) -> Result<(Envelope, Statement), Finding> {
    let (path, sig_path) = (subject.path, subject.sig_path);
    let Some(sig) = sig else {
        return Err(Finding::error(
            Code::SignatureMissing,
            Some(path),
            format!("no approval: {sig_path} is absent"),
        )
        .help(format!(
            "members of the required groups sign it with `treaty sign {path} --key KEY`"
        )));
    };
    let env = Envelope::parse(sig).map_err(|e| {
        let code = match &e {
            crate::dsse::EnvelopeError::Json(j) if j.is_duplicate_key() => Code::DuplicateKey,
            _ => Code::EnvelopeMalformed,
        };
        Finding::error(code, Some(sig_path), e.to_string())
    })?;
    let stmt = Statement::parse(&env.payload).map_err(|e| {
        let code = if e.is_duplicate_key() {
            Code::DuplicateKey
        } else {
            Code::StatementMalformed
        };
        Finding::error(
            code,
            Some(sig_path),
            format!("payload is not an approval statement: {e}"),
        )
    })?;
    Ok((env, stmt))
}

/// Step 2: the statement is about this subject (docs/spec.md § 6 items 1–5). Every finding is
/// an error; none means the statement may approve.
fn check_statement(stmt: &Statement, subject: &Subject, at: Instant) -> Vec<Finding> {
    let mut findings = Vec::new();
    check_shape(stmt, subject.sig_path, &mut findings);
    check_subject(stmt, subject, &mut findings);
    check_groups(stmt, subject, &mut findings);
    check_expiry(stmt, subject.sig_path, at, &mut findings);
    findings
}

/// The statement's type, predicate, single subject and format version.
fn check_shape(stmt: &Statement, sig_path: &str, findings: &mut Vec<Finding>) {
    if stmt.type_ != STATEMENT_TYPE
        || stmt.predicate_type != PREDICATE_TYPE
        || stmt.subject.len() != 1
    {
        findings.push(Finding::error(
            Code::StatementMalformed,
            Some(sig_path),
            format!(
                "statement must be {STATEMENT_TYPE} with predicate {PREDICATE_TYPE} and exactly one subject"
            ),
        ));
    }
    if let Err(m) = crate::governance::check_spec_version(&stmt.predicate.spec_version) {
        findings.push(Finding::error(
            Code::SpecVersionUnsupported,
            Some(sig_path),
            m.to_string(),
        ));
    }
}

/// The subject's name and digest, and the version, are this file's.
fn check_subject(stmt: &Statement, subject: &Subject, findings: &mut Vec<Finding>) {
    let (path, sig_path) = (subject.path, subject.sig_path);
    // Only a statement with its single subject is compared (docs/spec.md § 6 item 2); with
    // none or several it is already malformed, and judging the first of several would report
    // mismatches about a subject the spec does not define.
    if let [named] = stmt.subject.as_slice() {
        if named.name != path {
            findings.push(
                Finding::error(
                    Code::SubjectMismatch,
                    Some(sig_path),
                    format!("the approval is for {:?}, not {path:?}", named.name),
                )
                .help("an approval cannot be copied to another file; sign this file itself"),
            );
        }
        let want = Statement::new(path, subject.bytes, subject.version, vec![], None);
        if Some(&named.digest) != want.subject.first().map(|s| &s.digest) {
            findings.push(
                Finding::error(
                    Code::DigestMismatch,
                    Some(path),
                    "the file's bytes are not the bytes that were approved (changed after signing)",
                )
                .help("re-approve the new content: `treaty sign` by each required signer"),
            );
        }
    }
    if stmt.predicate.version != subject.version {
        findings.push(Finding::error(
            Code::StatementVersionMismatch,
            Some(sig_path),
            format!(
                "the approval is for version {}, the file is version {}",
                stmt.predicate.version, subject.version
            ),
        ));
    }
}

/// The statement names exactly the groups this file requires (a set, without repeats).
fn check_groups(stmt: &Statement, subject: &Subject, findings: &mut Vec<Finding>) {
    let want: BTreeSet<&GroupRef> = subject.refs.iter().collect();
    let have: BTreeSet<&GroupRef> = stmt.predicate.groups.iter().collect();
    if want == have && stmt.predicate.groups.len() == have.len() {
        return;
    }
    let names = |s: &BTreeSet<&GroupRef>| {
        s.iter()
            .map(|g| format!("{}={}", g.name, g.group_id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    findings.push(
        Finding::error(
            Code::StatementGroupsMismatch,
            Some(subject.sig_path),
            format!(
                "the approval names groups [{}] but this file requires [{}]",
                names(&have),
                names(&want)
            ),
        )
        .help("groups or the delegation changed since signing; collect approvals again"),
    );
}

/// An approval with an `expires` in the past (or unreadable) approves nothing.
fn check_expiry(stmt: &Statement, sig_path: &str, at: Instant, findings: &mut Vec<Finding>) {
    let Some(exp) = &stmt.predicate.expires else {
        return;
    };
    match crate::time::parse(exp) {
        Ok(t) if at >= t => findings.push(
            Finding::error(
                Code::ApprovalExpired,
                Some(sig_path),
                format!("the approval expired at {exp}"),
            )
            .help("renew it: the required signers sign again with a later expiry"),
        ),
        Ok(_) => {}
        Err(m) => findings.push(Finding::error(
            Code::StatementMalformed,
            Some(sig_path),
            format!("expires: {m}"),
        )),
    }
}

/// Which signature entries verify under which key, each key checked at most once. A keyid is
/// only a hint: a key that finds no valid entry under its own id is tried against the entries
/// whose hint names no key of any required group.
struct KeyCheck<'e> {
    env: &'e Envelope,
    msg: Vec<u8>,
    /// Entries whose hint names no required key.
    unmatched: Vec<usize>,
    /// Of those, the ones some key verified.
    used_unmatched: BTreeSet<usize>,
    /// Entries hinted at a member key that did not verify.
    invalid_hinted: usize,
    verified: HashMap<String, bool>,
}

impl<'e> KeyCheck<'e> {
    fn new(env: &'e Envelope, required: &[&Group]) -> Self {
        let known: BTreeSet<&str> = required
            .iter()
            .flat_map(|g| g.members.iter())
            .flat_map(|m| m.keys_with_ids().map(|(_, kid)| kid))
            .collect();
        let unmatched = (0..env.signatures.len())
            .filter(|&i| !known.contains(env.signatures[i].keyid.as_str()))
            .collect();
        KeyCheck {
            env,
            msg: env.signed_bytes(),
            unmatched,
            used_unmatched: BTreeSet::new(),
            invalid_hinted: 0,
            verified: HashMap::new(),
        }
    }

    /// Whether some entry of the envelope is a valid signature by `k` (id `kid`).
    fn signed(&mut self, k: &PublicKey, kid: &str) -> bool {
        if let Some(&v) = self.verified.get(kid) {
            return v;
        }
        let ok = self.signed_under_hint(k, kid) || self.signed_unhinted(k);
        self.verified.insert(kid.to_owned(), ok);
        ok
    }

    fn signed_under_hint(&mut self, k: &PublicKey, kid: &str) -> bool {
        for s in self.env.signatures.iter().filter(|s| s.keyid == kid) {
            if k.verify(&self.msg, &s.sig) {
                return true;
            }
            self.invalid_hinted += 1;
        }
        false
    }

    fn signed_unhinted(&mut self, k: &PublicKey) -> bool {
        let want_len = match k {
            PublicKey::Ed25519(_) => crate::crypto::ED25519_SIG_LEN,
            PublicKey::P256(_) => crate::crypto::P256_SIG_LEN,
            PublicKey::MlDsa65(_) => crate::crypto::MLDSA65_SIG_LEN,
        };
        let found = self.unmatched.iter().copied().find(|&i| {
            let s = &self.env.signatures[i];
            s.sig.len() == want_len && k.verify(&self.msg, &s.sig)
        });
        match found {
            Some(i) => {
                self.used_unmatched.insert(i);
                true
            }
            None => false,
        }
    }

    /// Entries that verified under no required key.
    fn unknown(&self) -> usize {
        self.unmatched
            .iter()
            .filter(|i| !self.used_unmatched.contains(i))
            .count()
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
    let mut check = KeyCheck::new(env, required);
    let mut findings = Vec::new();
    let tallies = required
        .iter()
        .map(|g| {
            let at = Where {
                stmt_path,
                sig_path,
            };
            tally_group(g, &mut check, at, revoked, exhaustive, &mut findings)
        })
        .collect();
    let plural = |n: usize| if n == 1 { "y" } else { "ies" };
    if check.invalid_hinted > 0 {
        let n = check.invalid_hinted;
        findings.push(Finding::warning(
            Code::InvalidSignature,
            Some(sig_path),
            format!("{n} signature entr{} name a member key but do not verify (forged, altered, or for other content)", plural(n)),
        ));
    }
    let unknown = check.unknown();
    if unknown > 0 && exhaustive {
        findings.push(Finding::warning(
            Code::UnknownKey,
            Some(sig_path),
            format!("{unknown} signature entr{} verify against no key of a required group and were ignored", plural(unknown)),
        ));
    }
    (tallies, findings)
}

/// The paths findings name.
#[derive(Clone, Copy)]
struct Where<'a> {
    stmt_path: &'a str,
    sig_path: &'a str,
}

/// One group's tally: a member counts once, with every key it holds (both halves of a hybrid
/// member), unless one of its keys is revoked.
fn tally_group(
    g: &Group,
    check: &mut KeyCheck,
    at: Where,
    revoked: &HashMap<String, Revocation>,
    exhaustive: bool,
    findings: &mut Vec<Finding>,
) -> GroupTally {
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
            let m_signed = check
                .env
                .signatures
                .iter()
                .any(|s| m.keys_with_ids().any(|(_, id)| id == s.keyid));
            if m_signed {
                findings.push(Finding::warning(
                    Code::RevokedKey,
                    Some(at.sig_path),
                    format!("member {:?} of {:?} signed, but key {kid} is revoked; it counts for nothing", m.id, g.name),
                ));
            }
            continue;
        }
        let mut keys = m.keys_with_ids();
        let ed_ok = keys.next().is_some_and(|(k, kid)| check.signed(k, kid));
        let ml_ok = keys.next().is_none_or(|(k, kid)| check.signed(k, kid));
        if ed_ok && ml_ok {
            signed.push(m.id.clone());
            continue;
        }
        if ed_ok != ml_ok && m.ml_dsa_65.is_some() {
            let classical = m.classical.algorithm().to_string();
            let (has, lacks) = if ed_ok {
                (classical.as_str(), "ml-dsa-65")
            } else {
                ("ml-dsa-65", classical.as_str())
            };
            findings.push(
                Finding::warning(
                    Code::HybridIncomplete,
                    Some(at.sig_path),
                    format!("member {:?} of {:?} has a valid {has} signature but no valid {lacks} one; a hybrid member needs both", m.id, g.name),
                )
                .help(format!("{} signs again with the full key: `treaty sign {} --key KEY`", m.id, at.stmt_path)),
            );
        }
        may_sign.push(m.id.clone());
    }
    signed.sort();
    may_sign.sort();
    let met = signed.len() >= g.threshold;
    if !met {
        findings.push(threshold_not_met(g, &signed, &may_sign, at.stmt_path));
    }
    GroupTally {
        name: g.name.clone(),
        group_id: g.group_id.clone(),
        threshold: g.threshold,
        signed,
        may_sign,
        met,
    }
}

fn threshold_not_met(g: &Group, signed: &[String], may_sign: &[String], path: &str) -> Finding {
    let who = if signed.is_empty() {
        String::new()
    } else {
        format!(" (signed: {})", signed.join(", "))
    };
    Finding::error(
        Code::ThresholdNotMet,
        Some(path),
        format!(
            "group {:?} has {} of {} required signatures{who}",
            g.name,
            signed.len(),
            g.threshold
        ),
    )
    .help(format!("may still sign: {}", may_sign.join(", ")))
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

#[cfg(test)]
#[allow(clippy::too_many_lines)]
mod tests {
    //! Approval rules without a process (issue 15): one honest, fully signed fixture, then a
    //! table of single mutations, each with the exact finding codes it must produce and the
    //! members that must count (docs/spec.md § 6; docs/model.md § When a file is approved).
    use super::*;
    use crate::crypto::SigningKey;
    use crate::dsse::Signature;
    use crate::governance::model::GroupBody;
    use crate::governance::model::MemberEntry;

    const PATH: &str = "treaties/AURORA-AKASH-001.json";
    const BYTES: &[u8] = b"{\"spec_version\":\"1.0\",\"version\":1}\n";
    const EXPIRES: &str = "2036-01-01T00:00:00Z";
    const AT: &str = "2030-01-01T00:00:00Z";

    fn key(id: &str) -> SigningKey {
        let seed = blake3::derive_key("treaty approval unit tests v1", id.as_bytes());
        SigningKey::deterministic(id, &seed).expect("deterministic key")
    }

    fn at(s: &str) -> Instant {
        crate::time::parse(s).expect("test timestamp")
    }

    /// Which of a member's two signatures an envelope carries.
    #[derive(Clone, Copy)]
    enum Part {
        Both,
        Ed,
        Ml,
    }

    /// What `judge_approval` is given, apart from the fixed path and groups.
    struct Input {
        bytes: Vec<u8>,
        version: u64,
        refs: Vec<GroupRef>,
        sig: Option<Vec<u8>>,
        revoked: HashMap<String, Revocation>,
        at: Instant,
    }

    /// `council` is hybrid 2-of-3; `akash` is 1-of-1 with an Ed25519-only member (whose
    /// signing key happens to hold an ML-DSA half the group does not know); `mallory` is in
    /// no group.
    struct Fx {
        c: [SigningKey; 3],
        akash: SigningKey,
        mallory: SigningKey,
        groups: [Group; 2],
    }

    impl Fx {
        fn new() -> Fx {
            let c = [key("council-1"), key("council-2"), key("council-3")];
            let akash = key("akash-1");
            let council =
                GroupBody::new("council", 2, c.iter().map(MemberEntry::for_key).collect())
                    .expect("council body");
            let mut a = MemberEntry::for_key(&akash);
            a.ml_dsa_65 = None;
            let akash_body: GroupBody = GroupBody::new("akash", 1, vec![a]).expect("akash body");
            let groups = [
                Group::validate("council", &council).expect("council"),
                Group::validate("akash", &akash_body).expect("akash"),
            ];
            Fx {
                c,
                akash,
                mallory: key("mallory"),
                groups,
            }
        }

        fn refs(&self) -> Vec<GroupRef> {
            self.groups
                .iter()
                .map(|g| GroupRef {
                    name: g.name.clone(),
                    group_id: g.group_id.clone(),
                })
                .collect()
        }

        fn statement(&self) -> Statement {
            Statement::new(PATH, BYTES, 1, self.refs(), Some(EXPIRES.into()))
        }

        fn honest_signers(&self) -> Vec<(&SigningKey, Part)> {
            vec![
                (&self.c[0], Part::Both),
                (&self.c[1], Part::Both),
                (&self.akash, Part::Ed),
            ]
        }

        /// The entries `k` makes over `payload`'s PAE, keyed by their own key ids.
        fn entries(&self, payload: &[u8], k: &SigningKey, part: Part) -> Vec<Signature> {
            let pae = crate::dsse::pae(crate::dsse::PAYLOAD_TYPE, payload);
            k.sign(&pae)
                .unwrap()
                .into_iter()
                .enumerate()
                .filter(|(i, _)| match part {
                    Part::Both => true,
                    Part::Ed => *i == 0,
                    Part::Ml => *i == 1,
                })
                .map(|(_, m)| Signature {
                    keyid: m.key.key_id(),
                    sig: m.sig,
                })
                .collect()
        }

        fn envelope(&self, stmt: &Statement, signers: &[(&SigningKey, Part)]) -> Envelope {
            let payload = stmt.to_bytes();
            let signatures = signers
                .iter()
                .flat_map(|(k, p)| self.entries(&payload, k, *p))
                .collect();
            Envelope {
                payload,
                signatures,
            }
        }

        fn input(&self, env: &Envelope) -> Input {
            Input {
                bytes: BYTES.to_vec(),
                version: 1,
                refs: self.refs(),
                sig: Some(env.to_bytes()),
                revoked: HashMap::new(),
                at: at(AT),
            }
        }

        fn honest(&self) -> Input {
            self.input(&self.envelope(&self.statement(), &self.honest_signers()))
        }

        /// The honest signers over another statement.
        fn signed(&self, stmt: &Statement) -> Input {
            self.input(&self.envelope(stmt, &self.honest_signers()))
        }

        fn signed_by(&self, signers: &[(&SigningKey, Part)]) -> Input {
            self.input(&self.envelope(&self.statement(), signers))
        }

        /// The honest envelope with `edit` applied to its entries.
        fn edited(&self, edit: impl FnOnce(&Fx, &mut Vec<Signature>)) -> Input {
            let mut env = self.envelope(&self.statement(), &self.honest_signers());
            edit(self, &mut env.signatures);
            self.input(&env)
        }

        fn judge(&self, i: &Input, exhaustive: bool) -> Judged {
            let required: Vec<&Group> = self.groups.iter().collect();
            let sig_path = format!("{PATH}.sig");
            let subject = Subject {
                path: PATH,
                sig_path: &sig_path,
                bytes: &i.bytes,
                version: i.version,
                refs: &i.refs,
            };
            let rules = Rules {
                required: &required,
                revoked: &i.revoked,
                at: i.at,
                exhaustive,
            };
            judge_approval(&subject, &rules, i.sig.as_deref())
        }
    }

    fn kid(k: &SigningKey, part: Part) -> String {
        match part {
            Part::Ml => k.mldsa_public().expect("hybrid").key_id(),
            _ => k.classical_public().key_id(),
        }
    }

    fn revocation(k: &str, reason: RevocationReason, time: &str) -> (String, Revocation) {
        (
            k.to_owned(),
            Revocation {
                keyid: k.to_owned(),
                reason,
                time: time.into(),
            },
        )
    }

    fn revoke(mut i: Input, k: &SigningKey, part: Part, reason: RevocationReason) -> Input {
        i.revoked
            .extend([revocation(&kid(k, part), reason, "2029-01-01T00:00:00Z")]);
        i
    }

    fn codes(j: &Judged) -> Vec<Code> {
        let mut c: Vec<Code> = j.findings.iter().map(|f| f.code).collect();
        c.sort();
        c.dedup();
        c
    }

    fn sorted(mut c: Vec<Code>) -> Vec<Code> {
        c.sort();
        c
    }

    fn council_signed(j: &Judged) -> Vec<&str> {
        j.groups
            .iter()
            .find(|g| g.name == "council")
            .map(|g| g.signed.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    struct Row {
        name: &'static str,
        input: fn(&Fx) -> Input,
        approved: bool,
        /// Every code the findings carry, errors and warnings, exactly.
        codes: &'static [Code],
        /// Who counts for `council` when every signature is checked.
        council: &'static [&'static str],
    }

    use Code::*;

    const C12: &[&str] = &["council-1", "council-2"];
    const C1: &[&str] = &["council-1"];

    fn rows() -> Vec<Row> {
        vec![
            // --- thresholds and distinct members -------------------------------------------
            Row {
                name: "council one signature short of its threshold",
                input: |fx| fx.signed_by(&[(&fx.c[0], Part::Both), (&fx.akash, Part::Ed)]),
                approved: false,
                codes: &[ThresholdNotMet],
                council: C1,
            },
            Row {
                name: "the second required group (akash 1 of 1) has not signed",
                input: |fx| fx.signed_by(&[(&fx.c[0], Part::Both), (&fx.c[1], Part::Both)]),
                approved: false,
                codes: &[ThresholdNotMet],
                council: C12,
            },
            Row {
                name: "every council member signs: more than the threshold still approves",
                input: |fx| {
                    fx.signed_by(&[
                        (&fx.c[0], Part::Both),
                        (&fx.c[1], Part::Both),
                        (&fx.c[2], Part::Both),
                        (&fx.akash, Part::Ed),
                    ])
                },
                approved: true,
                codes: &[],
                council: &["council-1", "council-2", "council-3"],
            },
            Row {
                name: "one member signing twice counts once",
                input: |fx| {
                    fx.signed_by(&[
                        (&fx.c[0], Part::Both),
                        (&fx.c[0], Part::Both),
                        (&fx.akash, Part::Ed),
                    ])
                },
                approved: false,
                codes: &[ThresholdNotMet],
                council: C1,
            },
            Row {
                name: "two entries of one key (the copy with an empty keyid) count once",
                input: |fx| {
                    let signers = [(&fx.c[0], Part::Both), (&fx.akash, Part::Ed)];
                    let mut env = fx.envelope(&fx.statement(), &signers);
                    let mut copy = fx.entries(&env.payload, &fx.c[0], Part::Ed);
                    copy[0].keyid = String::new();
                    env.signatures.append(&mut copy);
                    fx.input(&env)
                },
                approved: false,
                // The copy is tried for council-2 and council-3 (no entry of their own), fits
                // neither, and is reported as unknown.
                codes: &[ThresholdNotMet, UnknownKey],
                council: C1,
            },
            Row {
                name: "a member's signatures relabelled with another member's key ids",
                input: |fx| {
                    fx.edited(|fx, sigs| {
                        sigs.retain(|s| {
                            s.keyid != kid(&fx.c[1], Part::Ed) && s.keyid != kid(&fx.c[1], Part::Ml)
                        });
                        let payload = fx.statement().to_bytes();
                        for mut s in fx.entries(&payload, &fx.c[0], Part::Both) {
                            s.keyid = if s.sig.len() == crate::crypto::ED25519_SIG_LEN {
                                kid(&fx.c[1], Part::Ed)
                            } else {
                                kid(&fx.c[1], Part::Ml)
                            };
                            sigs.push(s);
                        }
                    })
                },
                approved: false,
                codes: &[ThresholdNotMet, InvalidSignature],
                council: C1,
            },
            // --- hybrid members -------------------------------------------------------------
            Row {
                name: "hybrid member with only its Ed25519 signature",
                input: |fx| {
                    fx.signed_by(&[
                        (&fx.c[0], Part::Both),
                        (&fx.c[1], Part::Ed),
                        (&fx.akash, Part::Ed),
                    ])
                },
                approved: false,
                codes: &[ThresholdNotMet, HybridIncomplete],
                council: C1,
            },
            Row {
                name: "hybrid member with only its ML-DSA-65 signature",
                input: |fx| {
                    fx.signed_by(&[
                        (&fx.c[0], Part::Both),
                        (&fx.c[1], Part::Ml),
                        (&fx.akash, Part::Ed),
                    ])
                },
                approved: false,
                codes: &[ThresholdNotMet, HybridIncomplete],
                council: C1,
            },
            Row {
                name: "hybrid member whose ML-DSA-65 entry is over another statement",
                input: |fx| {
                    fx.edited(|fx, sigs| {
                        let ml = kid(&fx.c[1], Part::Ml);
                        sigs.retain(|s| s.keyid != ml);
                        let other = Statement::new(PATH, b"other", 1, fx.refs(), None).to_bytes();
                        sigs.extend(fx.entries(&other, &fx.c[1], Part::Ml));
                    })
                },
                approved: false,
                codes: &[ThresholdNotMet, HybridIncomplete, InvalidSignature],
                council: C1,
            },
            Row {
                name: "hybrid member whose Ed25519 signature has one bit flipped",
                input: |fx| {
                    fx.edited(|fx, sigs| {
                        let ed = kid(&fx.c[1], Part::Ed);
                        for s in sigs.iter_mut().filter(|s| s.keyid == ed) {
                            s.sig[10] ^= 1;
                        }
                    })
                },
                approved: false,
                codes: &[ThresholdNotMet, HybridIncomplete, InvalidSignature],
                council: C1,
            },
            Row {
                name: "an Ed25519-only member's extra ML-DSA-65 entry is an unknown key",
                input: |fx| {
                    fx.signed_by(&[
                        (&fx.c[0], Part::Both),
                        (&fx.c[1], Part::Both),
                        (&fx.akash, Part::Both),
                    ])
                },
                approved: true,
                codes: &[UnknownKey],
                council: C12,
            },
            // --- revoked keys ---------------------------------------------------------------
            Row {
                name: "a signer's Ed25519 key is compromised",
                input: |fx| {
                    revoke(
                        fx.honest(),
                        &fx.c[1],
                        Part::Ed,
                        RevocationReason::Compromised,
                    )
                },
                approved: false,
                codes: &[ThresholdNotMet, RevokedKey],
                council: C1,
            },
            Row {
                name: "a signer's ML-DSA-65 key is compromised",
                input: |fx| {
                    revoke(
                        fx.honest(),
                        &fx.c[1],
                        Part::Ml,
                        RevocationReason::Compromised,
                    )
                },
                approved: false,
                codes: &[ThresholdNotMet, RevokedKey],
                council: C1,
            },
            Row {
                name: "a signer's key is retired and no time is proven",
                input: |fx| {
                    let mut i = revoke(fx.honest(), &fx.c[1], Part::Ed, RevocationReason::Retired);
                    i.revoked = effective_revocations(&i.revoked, None);
                    i
                },
                approved: false,
                codes: &[ThresholdNotMet, RevokedKey],
                council: C1,
            },
            Row {
                name: "a signer's key is retired after the approval's proven time",
                input: |fx| {
                    let mut i = revoke(fx.honest(), &fx.c[1], Part::Ed, RevocationReason::Retired);
                    i.revoked =
                        effective_revocations(&i.revoked, Some(at("2028-06-01T00:00:00Z").unix()));
                    i
                },
                approved: true,
                codes: &[],
                council: C12,
            },
            Row {
                name: "a signer's key was retired before the approval's proven time",
                input: |fx| {
                    let mut i = revoke(fx.honest(), &fx.c[1], Part::Ed, RevocationReason::Retired);
                    i.revoked =
                        effective_revocations(&i.revoked, Some(at("2029-06-01T00:00:00Z").unix()));
                    i
                },
                approved: false,
                codes: &[ThresholdNotMet, RevokedKey],
                council: C1,
            },
            Row {
                name: "a signer's key is compromised after the approval's proven time",
                input: |fx| {
                    let mut i = revoke(
                        fx.honest(),
                        &fx.c[1],
                        Part::Ed,
                        RevocationReason::Compromised,
                    );
                    i.revoked =
                        effective_revocations(&i.revoked, Some(at("2028-06-01T00:00:00Z").unix()));
                    i
                },
                approved: false,
                codes: &[ThresholdNotMet, RevokedKey],
                council: C1,
            },
            Row {
                name: "a revoked key of a member who did not sign changes nothing",
                input: |fx| {
                    revoke(
                        fx.honest(),
                        &fx.c[2],
                        Part::Ed,
                        RevocationReason::Compromised,
                    )
                },
                approved: true,
                codes: &[],
                council: C12,
            },
            // --- what the statement binds ---------------------------------------------------
            Row {
                name: "a signature over another path",
                input: |fx| {
                    fx.signed(&Statement::new(
                        "treaties/AURORA-AKASH-002.json",
                        BYTES,
                        1,
                        fx.refs(),
                        Some(EXPIRES.into()),
                    ))
                },
                approved: false,
                codes: &[SubjectMismatch],
                council: C12,
            },
            Row {
                name: "a signature over other bytes",
                input: |fx| {
                    fx.signed(&Statement::new(
                        PATH,
                        b"{}",
                        1,
                        fx.refs(),
                        Some(EXPIRES.into()),
                    ))
                },
                approved: false,
                codes: &[DigestMismatch],
                council: C12,
            },
            Row {
                name: "the file edited after signing",
                input: |fx| Input {
                    bytes: b"{\"spec_version\":\"1.0\",\"version\":1} \n".to_vec(),
                    ..fx.honest()
                },
                approved: false,
                codes: &[DigestMismatch],
                council: C12,
            },
            Row {
                name: "a signature over another version",
                input: |fx| {
                    fx.signed(&Statement::new(
                        PATH,
                        BYTES,
                        2,
                        fx.refs(),
                        Some(EXPIRES.into()),
                    ))
                },
                approved: false,
                codes: &[StatementVersionMismatch],
                council: C12,
            },
            Row {
                name: "a statement naming one of the two required groups",
                input: |fx| {
                    let refs = fx.refs()[..1].to_vec();
                    fx.signed(&Statement::new(PATH, BYTES, 1, refs, Some(EXPIRES.into())))
                },
                approved: false,
                codes: &[StatementGroupsMismatch],
                council: C12,
            },
            Row {
                name: "a statement naming a required group under another group id",
                input: |fx| {
                    let mut refs = fx.refs();
                    refs[1].group_id = fx.groups[0].group_id.clone();
                    fx.signed(&Statement::new(PATH, BYTES, 1, refs, Some(EXPIRES.into())))
                },
                approved: false,
                codes: &[StatementGroupsMismatch],
                council: C12,
            },
            Row {
                name: "a statement naming an extra group",
                input: |fx| {
                    let mut refs = fx.refs();
                    refs.push(GroupRef {
                        name: "root".into(),
                        group_id: "blake3:00".into(),
                    });
                    fx.signed(&Statement::new(PATH, BYTES, 1, refs, Some(EXPIRES.into())))
                },
                approved: false,
                codes: &[StatementGroupsMismatch],
                council: C12,
            },
            Row {
                name: "a statement naming a required group twice",
                input: |fx| {
                    let mut stmt = fx.statement();
                    let dup = stmt.predicate.groups[0].clone();
                    stmt.predicate.groups.push(dup);
                    fx.signed(&stmt)
                },
                approved: false,
                codes: &[StatementGroupsMismatch],
                council: C12,
            },
            Row {
                name: "the statement's groups in another order (a set) still approve",
                input: |fx| {
                    let mut stmt = fx.statement();
                    stmt.predicate.groups.reverse();
                    fx.signed(&stmt)
                },
                approved: true,
                codes: &[],
                council: C12,
            },
            Row {
                name: "an expired statement",
                input: |fx| {
                    fx.signed(&Statement::new(
                        PATH,
                        BYTES,
                        1,
                        fx.refs(),
                        Some("2029-12-31T23:59:59Z".into()),
                    ))
                },
                approved: false,
                codes: &[ApprovalExpired],
                council: C12,
            },
            Row {
                name: "a statement expiring exactly at the judging time",
                input: |fx| fx.signed(&Statement::new(PATH, BYTES, 1, fx.refs(), Some(AT.into()))),
                approved: false,
                codes: &[ApprovalExpired],
                council: C12,
            },
            Row {
                name: "a statement without expiry approves",
                input: |fx| fx.signed(&Statement::new(PATH, BYTES, 1, fx.refs(), None)),
                approved: true,
                codes: &[],
                council: C12,
            },
            Row {
                name: "a statement whose expiry is not an RFC 3339 timestamp",
                input: |fx| {
                    fx.signed(&Statement::new(
                        PATH,
                        BYTES,
                        1,
                        fx.refs(),
                        Some("2036-01-01".into()),
                    ))
                },
                approved: false,
                codes: &[StatementMalformed],
                council: C12,
            },
            Row {
                name: "a statement with an unsupported spec_version major",
                input: |fx| {
                    let mut stmt = fx.statement();
                    stmt.predicate.spec_version = "2.0".into();
                    fx.signed(&stmt)
                },
                approved: false,
                codes: &[SpecVersionUnsupported],
                council: C12,
            },
            Row {
                name: "no envelope at all",
                input: |fx| Input {
                    sig: None,
                    ..fx.honest()
                },
                approved: false,
                codes: &[SignatureMissing],
                council: &[],
            },
            Row {
                name: "an envelope that is not JSON",
                input: |fx| Input {
                    sig: Some(b"not json".to_vec()),
                    ..fx.honest()
                },
                approved: false,
                codes: &[EnvelopeMalformed],
                council: &[],
            },
            // --- key ids are hints ----------------------------------------------------------
            Row {
                name: "an extra signature by a key of no required group",
                input: |fx| {
                    fx.edited(|fx, sigs| {
                        let payload = fx.statement().to_bytes();
                        sigs.extend(fx.entries(&payload, &fx.mallory, Part::Both));
                    })
                },
                approved: true,
                codes: &[UnknownKey],
                council: C12,
            },
            Row {
                name: "an outsider signs instead of a council member",
                input: |fx| {
                    fx.signed_by(&[
                        (&fx.c[0], Part::Both),
                        (&fx.mallory, Part::Both),
                        (&fx.akash, Part::Ed),
                    ])
                },
                approved: false,
                codes: &[ThresholdNotMet, UnknownKey],
                council: C1,
            },
            Row {
                name: "a member's signatures under unknown key ids still count",
                input: |fx| {
                    fx.edited(|fx, sigs| {
                        let mine = [kid(&fx.c[1], Part::Ed), kid(&fx.c[1], Part::Ml)];
                        for s in sigs.iter_mut().filter(|s| mine.contains(&s.keyid)) {
                            s.keyid = "not-a-key-id".into();
                        }
                    })
                },
                approved: true,
                codes: &[],
                council: C12,
            },
        ]
    }

    #[test]
    fn the_honest_fixture_is_approved_with_no_findings() {
        let fx = Fx::new();
        for exhaustive in [true, false] {
            let j = fx.judge(&fx.honest(), exhaustive);
            assert!(j.approved, "{:?}", j.findings);
            assert!(j.findings.is_empty(), "{:?}", j.findings);
            assert!(j.groups.iter().all(|g| g.met));
            assert_eq!(j.expires.as_deref(), Some(EXPIRES));
        }
        let j = fx.judge(&fx.honest(), true);
        assert_eq!(council_signed(&j), C12);
        assert_eq!(j.groups[0].may_sign, ["council-3"]);
        assert_eq!(j.groups[1].signed, ["akash-1"]);
    }

    #[test]
    fn each_single_mutation_of_the_honest_approval_gives_its_exact_codes() {
        let fx = Fx::new();
        let mut failures = Vec::new();
        for row in rows() {
            let input = (row.input)(&fx);
            let j = fx.judge(&input, true);
            let want = sorted(row.codes.to_vec());
            if j.approved != row.approved || codes(&j) != want || council_signed(&j) != row.council
            {
                failures.push(format!(
                    "{}: approved {} (want {}), codes {:?} (want {:?}), council signed {:?} (want {:?})",
                    row.name,
                    j.approved,
                    row.approved,
                    codes(&j),
                    want,
                    council_signed(&j),
                    row.council
                ));
            }
            // Stopping at the threshold never changes the verdict or the errors
            // (docs/model.md: `verify` stops early, `status` checks everything).
            let early = fx.judge(&input, false);
            let errors = |j: &Judged| {
                sorted(
                    j.findings
                        .iter()
                        .filter(|f| f.is_error())
                        .map(|f| f.code)
                        .collect(),
                )
            };
            if early.approved != j.approved || errors(&early) != errors(&j) {
                failures.push(format!(
                    "{}: early stopping changed the verdict: {:?} vs {:?}",
                    row.name, early.findings, j.findings
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn warnings_alone_never_refuse_an_approval() {
        let fx = Fx::new();
        for row in rows() {
            let j = fx.judge(&(row.input)(&fx), true);
            let has_error = j.findings.iter().any(Finding::is_error);
            assert_eq!(j.approved, !has_error, "{}: {:?}", row.name, j.findings);
        }
    }

    #[test]
    fn effective_revocations_drop_only_retirements_after_the_proven_time() {
        use RevocationReason::{Compromised, Retired};
        let t = |s: &str| Some(at(s).unix());
        // (reason, revocation time, proven time, does the revocation still apply?)
        let table: &[(RevocationReason, &str, Option<i64>, bool)] = &[
            (Compromised, "2029-01-01T00:00:00Z", None, true),
            (
                Compromised,
                "2029-01-01T00:00:00Z",
                t("2028-01-01T00:00:00Z"),
                true,
            ),
            (
                Compromised,
                "2029-01-01T00:00:00Z",
                t("2030-01-01T00:00:00Z"),
                true,
            ),
            (Retired, "2029-01-01T00:00:00Z", None, true),
            (
                Retired,
                "2029-01-01T00:00:00Z",
                t("2028-12-31T23:59:59Z"),
                false,
            ),
            // "time later than genTime" (docs/spec.md § 6.1): at the same instant it applies.
            (
                Retired,
                "2029-01-01T00:00:00Z",
                t("2029-01-01T00:00:00Z"),
                true,
            ),
            (
                Retired,
                "2029-01-01T00:00:00Z",
                t("2030-01-01T00:00:00Z"),
                true,
            ),
            (
                Retired,
                "2029-01-01T01:00:00+01:00",
                t("2028-12-31T23:59:59Z"),
                false,
            ),
            (
                Retired,
                "2029-01-01T01:00:00+01:00",
                t("2029-01-01T00:00:00Z"),
                true,
            ),
            // Proofs are whole seconds: a retirement within the proven second is kept
            // (conservative; the spec compares to the nanosecond).
            (
                Retired,
                "2029-01-01T00:00:00.5Z",
                t("2029-01-01T00:00:00Z"),
                true,
            ),
            // A revocation time that does not parse is never lifted.
            (Retired, "someday", t("2000-01-01T00:00:00Z"), true),
        ];
        for (i, (reason, time, proven, kept)) in table.iter().enumerate() {
            let all: HashMap<_, _> = [revocation("k", *reason, time)].into();
            let eff = effective_revocations(&all, *proven);
            assert_eq!(
                eff.contains_key("k"),
                *kept,
                "row {i}: {reason:?} at {time}, proven {proven:?}"
            );
            if *kept {
                assert_eq!(eff.get("k"), all.get("k"), "row {i}: kept unchanged");
            }
        }
        // Each revocation is judged on its own.
        let both: HashMap<_, _> = [
            revocation("a", Compromised, "2029-01-01T00:00:00Z"),
            revocation("b", Retired, "2029-01-01T00:00:00Z"),
        ]
        .into();
        let eff = effective_revocations(&both, t("2028-01-01T00:00:00Z"));
        assert_eq!(eff.keys().collect::<Vec<_>>(), ["a"]);
    }
}
