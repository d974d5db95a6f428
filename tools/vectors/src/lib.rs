//! Test vectors for `docs/spec.md`: `cargo run -p treaty-vectors -- --out tests/vectors` writes
//! them; tests and the independent reference verifier (`tests/reference/verify.py`) judge them.
//! A tool beside the product (ARCHITECTURE.md): not in the `treaty` library or binary, and it
//! does not depend on the benchmarks.
#![forbid(unsafe_code)]
//!
//! Owns the vector format (docs/spec.md §8) and the catalogue of cases, one or more per rule,
//! each built from a small signed federation by one change. Every case is judged by this build
//! before it is written, and generation fails if the verdict is not the one the case intends, so
//! a checked-in vector can never encode a verdict we did not mean.

use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use treaty::crypto::SigningKey;
use treaty::governance::model::{Delegation, GroupFile, Root, ROOT_GROUP};
use treaty::path::RepoPath;
use treaty::scaffold::{group_body, json_bytes, member_entry, write_atomic, ScaffoldError};
use treaty::sign::approve;
use treaty::source::{Entry, Tree};
use treaty::statement::GroupRef;

pub mod messages;

type Files = BTreeMap<String, Vec<u8>>;

const CREATED: &str = "2026-01-01T00:00:00Z";
const EXPIRES: &str = "2036-01-01T00:00:00Z";
const AT: &str = "2030-01-01T00:00:00Z";
const TREATY: &str = "treaties/AURORA-AKASH-001.json";

/// The `version` a schema file carries (schemas are versioned like every governed file).
fn schema_version(bytes: &[u8]) -> Result<u64, VectorsError> {
    let v = treaty::json::parse_value(bytes).map_err(other)?;
    v.get("version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| other("a builtin schema without a version"))
}

/// Why the vectors could not be written. A tool beside the product: a failed step carries its
/// own message.
#[derive(Debug, thiserror::Error)]
pub enum VectorsError {
    #[error(transparent)]
    Scaffold(#[from] ScaffoldError),
    #[error("{0}")]
    Step(String),
    #[error(transparent)]
    Key(#[from] treaty::crypto::KeyError),
}

fn other(e: impl std::fmt::Display) -> VectorsError {
    VectorsError::Step(e.to_string())
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The small federation every case starts from, with its keys.
struct Fed {
    root_keys: Vec<Rc<SigningKey>>,
    council: Vec<Rc<SigningKey>>,
    akash: Vec<Rc<SigningKey>>,
    outsider: Rc<SigningKey>,
    files: Files,
}

/// A vector member's key, derived from its name: the seeds are public and fixed, so
/// regenerating the vectors gives byte-identical files (docs/spec.md § 8).
fn key(id: &str) -> Result<SigningKey, VectorsError> {
    let seed = blake3::derive_key("treaty spec test vectors v1 member seed", id.as_bytes());
    SigningKey::deterministic(id, &seed).map_err(other)
}

/// A vector member whose classical key is ECDSA P-256 (the shape of a TPM-resident member),
/// derived from its name like [`key`].
fn key_p256(id: &str) -> Result<SigningKey, VectorsError> {
    let seed = blake3::derive_key("treaty spec test vectors v1 member seed", id.as_bytes());
    SigningKey::deterministic_p256(id, &seed).map_err(other)
}

fn ed_only(id: &str) -> Result<SigningKey, VectorsError> {
    // An Ed25519-only member: the key file format allows it; build one by round-tripping a
    // vector key without its ML-DSA half.
    let k = key(id)?;
    let mut f = k.to_file(None).map_err(other)?;
    f.public.ml_dsa_65 = None;
    let secret = treaty::crypto::unb64(&f.secret).map_err(other)?;
    f.secret = b64(&secret[..32]);
    SigningKey::from_file(&f, id, || Ok(String::new())).map_err(other)
}

impl Fed {
    fn new() -> Result<Fed, VectorsError> {
        let gen = |id: &str| key(id).map(Rc::new);
        let mut fed = Fed {
            root_keys: vec![gen("root-1")?, gen("root-2")?],
            council: vec![gen("council-1")?, gen("council-2")?, gen("council-3")?],
            akash: vec![Rc::new(ed_only("akash-1")?)],
            outsider: gen("mallory")?,
            files: Files::new(),
        };
        fed.write_groups(&[("council", 2), ("akash", 1)])?;
        let r1 = fed.root_keys[0].clone();
        let root = fed.root(1, 1, &[&r1])?;
        fed.put_root(&root, &[&r1], None)?;
        for name in ["treaty", "root", "group"] {
            let rel = format!("schemas/{name}.schema.json");
            let text = treaty::governance::schema::BUILTIN
                .iter()
                .find(|(n, _)| *n == format!("{name}.schema.json"))
                .map(|(_, t)| t.as_bytes().to_vec())
                .ok_or_else(|| other("builtin schema missing"))?;
            let version = schema_version(&text)?;
            fed.files.insert(rel.clone(), text);
            fed.sign_file(&rel, version, &[ROOT_GROUP], &[&r1], None)?;
        }
        let t = fed.treaty(1);
        fed.files.insert(TREATY.into(), t);
        let (c1, c2, a1) = (
            fed.council[0].clone(),
            fed.council[1].clone(),
            fed.akash[0].clone(),
        );
        fed.sign_file(TREATY, 1, &["akash", "council"], &[&c1, &c2, &a1], None)?;
        Ok(fed)
    }

    fn treaty(&self, version: u64) -> Vec<u8> {
        let mut t = treaty::scaffold::treaty_json(0, CREATED, EXPIRES);
        t["version"] = version.into();
        json_bytes(&t)
    }

    fn write_groups(&mut self, spec: &[(&str, u64)]) -> Result<(), VectorsError> {
        for (name, t) in spec {
            let keys = if *name == "council" {
                &self.council
            } else {
                &self.akash
            };
            let body = group_body(name, *t, keys.iter().map(|k| member_entry(k)).collect())?;
            let gf = GroupFile {
                spec_version: treaty::SPEC_VERSION.into(),
                name: (*name).into(),
                threshold: *t,
                members: body.members,
                group_id: body.group_id,
            };
            self.files
                .insert(format!("keys/groups/{name}.json"), json_bytes(&gf));
        }
        Ok(())
    }

    fn group_file(&self, name: &str) -> Result<GroupFile, VectorsError> {
        let b = self
            .files
            .get(&format!("keys/groups/{name}.json"))
            .ok_or_else(|| other("no group"))?;
        treaty::json::from_slice(b).map_err(other)
    }

    fn root(
        &self,
        version: u64,
        threshold: u64,
        members: &[&SigningKey],
    ) -> Result<Root, VectorsError> {
        let mut pins = BTreeMap::new();
        for g in ["council", "akash"] {
            pins.insert(g.to_owned(), self.group_file(g)?.group_id);
        }
        Ok(Root {
            spec_version: treaty::SPEC_VERSION.into(),
            version,
            expires: EXPIRES.into(),
            root_group: group_body(
                ROOT_GROUP,
                threshold,
                members.iter().map(|k| member_entry(k)).collect(),
            )?,
            groups: pins,
            delegations: vec![
                Delegation {
                    name: "treaties-akash".into(),
                    paths: vec!["treaties/AURORA-AKASH-*".into()],
                    groups: vec!["council".into(), "akash".into()],
                },
                Delegation {
                    name: "governance-config".into(),
                    paths: vec!["keys/**".into(), "schemas/**".into()],
                    groups: vec![ROOT_GROUP.into()],
                },
            ],
            roles: treaty::governance::model::all_roles("council"),
            revoked: vec![],
        })
    }

    /// Writes root version `root.version` (root.json + roots/N.json) approved by `signers`
    /// under the root groups of the previous and this version.
    fn put_root(
        &mut self,
        root: &Root,
        signers: &[&SigningKey],
        prev: Option<&Root>,
    ) -> Result<(), VectorsError> {
        let bytes = json_bytes(root);
        let mut refs = vec![GroupRef {
            name: ROOT_GROUP.into(),
            group_id: root.root_group.group_id.clone(),
        }];
        if let Some(p) = prev {
            refs.push(GroupRef {
                name: ROOT_GROUP.into(),
                group_id: p.root_group.group_id.clone(),
            });
        }
        let env = approve(
            treaty::trust::ROOT_PATH,
            &bytes,
            root.version,
            refs,
            Some(EXPIRES.into()),
            signers,
        )?;
        self.files.insert("keys/root.json".into(), bytes.clone());
        self.files
            .insert(format!("keys/roots/{}.json", root.version), bytes);
        self.files.insert("keys/root.json.sig".into(), env.clone());
        self.files
            .insert(format!("keys/roots/{}.json.sig", root.version), env);
        Ok(())
    }

    fn current_root(&self) -> Result<Root, VectorsError> {
        treaty::json::from_slice(
            self.files
                .get("keys/root.json")
                .ok_or_else(|| other("no root"))?,
        )
        .map_err(other)
    }

    fn refs(&self, groups: &[&str]) -> Result<Vec<GroupRef>, VectorsError> {
        let root = self.current_root()?;
        groups
            .iter()
            .map(|g| {
                let id = if *g == ROOT_GROUP {
                    Some(root.root_group.group_id.clone())
                } else {
                    root.groups.get(*g).cloned()
                };
                id.map(|group_id| GroupRef {
                    name: (*g).into(),
                    group_id,
                })
                .ok_or_else(|| other(format!("no group {g}")))
            })
            .collect()
    }

    /// An approval of treaty bytes under the treaty delegation's groups, by `signers`.
    fn treaty_env(
        &self,
        bytes: &[u8],
        version: u64,
        signers: &[&SigningKey],
    ) -> Result<Vec<u8>, VectorsError> {
        Ok(approve(
            TREATY,
            bytes,
            version,
            self.refs(&["akash", "council"])?,
            Some(EXPIRES.into()),
            signers,
        )?)
    }

    /// An envelope over exactly `payload` (which need not be a valid statement), signed by
    /// every key of `signers`: for the cases whose point is the payload's bytes.
    fn env_over(&self, payload: Vec<u8>, signers: &[&SigningKey]) -> Result<Vec<u8>, VectorsError> {
        let mut env = treaty::dsse::Envelope {
            payload,
            signatures: vec![],
        };
        let pae = env.signed_bytes();
        for k in signers {
            for m in k.sign(&pae)? {
                env.signatures.push(treaty::dsse::Signature {
                    keyid: m.key.key_id(),
                    sig: m.sig,
                });
            }
        }
        Ok(env.to_bytes())
    }

    /// The honest treaty approval's payload as text, changed by `edit`, signed by the three
    /// signers the base approval has; `edit` must change it.
    fn treaty_payload_edited(
        &self,
        bytes: &[u8],
        edit: impl FnOnce(&str) -> String,
    ) -> Result<Vec<u8>, VectorsError> {
        let honest = treaty::statement::Statement::new(
            TREATY,
            bytes,
            1,
            self.refs(&["akash", "council"])?,
            Some(EXPIRES.into()),
        )
        .to_bytes();
        let text = String::from_utf8(honest).map_err(other)?;
        let edited = edit(&text);
        if edited == text {
            return Err(other("a payload edit changed nothing"));
        }
        self.env_over(
            edited.into_bytes(),
            &[&self.council[0], &self.council[1], &self.akash[0]],
        )
    }

    fn sign_file(
        &mut self,
        rel: &str,
        version: u64,
        groups: &[&str],
        signers: &[&SigningKey],
        expires: Option<&str>,
    ) -> Result<(), VectorsError> {
        let bytes = self
            .files
            .get(rel)
            .cloned()
            .ok_or_else(|| other(format!("no {rel}")))?;
        let env = approve(
            rel,
            &bytes,
            version,
            self.refs(groups)?,
            Some(expires.unwrap_or(EXPIRES).into()),
            signers,
        )?;
        self.files.insert(format!("{rel}.sig"), env);
        Ok(())
    }
}

fn tree_of(files: &Files) -> Result<Tree, VectorsError> {
    let mut t = Tree::default();
    for (p, b) in files {
        t.entries
            .insert(RepoPath::new(p).map_err(other)?, Entry::File(b.clone()));
    }
    Ok(t)
}

/// Applies a case's changes (docs/spec.md §8) to a base tree's files.
pub fn apply(base: &Files, set: &BTreeMap<String, Vec<u8>>, remove: &[String]) -> Files {
    let mut f = base.clone();
    for r in remove {
        f.remove(r);
    }
    for (p, b) in set {
        f.insert(p.clone(), b.clone());
    }
    f
}

fn diff(base: &Files, new: &Files) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let set = new
        .iter()
        .filter(|(p, b)| base.get(*p) != Some(*b))
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect();
    let remove = base
        .keys()
        .filter(|p| !new.contains_key(*p))
        .cloned()
        .collect();
    (set, remove)
}

struct Case {
    name: &'static str,
    rule: &'static str,
    description: &'static str,
    at: &'static str,
    files: Files,
    parent: Option<Files>,
    trust: Option<Vec<u8>>,
    approved: bool,
    reason: Option<&'static str>,
    about: Vec<String>,
}

/// §3.2 / §1: council-3 becomes a member whose classical key is ECDSA P-256 (a TPM member):
/// council's group id moves to the v2 preimage, root version 2 pins it, and the treaty is
/// approved by council-1 and council-3. Its P-256 signature counts only in its one strict form.
fn p256_cases(fed: &mut Fed, root1: &Root) -> Result<Vec<Case>, VectorsError> {
    let case = |name, description, files: Files, approved, reason| Case {
        name,
        rule: if approved { "§3.2" } else { "§1" },
        description,
        at: AT,
        files,
        parent: None,
        trust: None,
        approved,
        reason,
        about: vec![TREATY.to_owned(), "keys/groups/council.json".to_owned()],
    };
    let saved = fed.files.clone();
    let saved_council = fed.council.clone();
    let tpm = Rc::new(key_p256("council-3")?);
    fed.council[2] = tpm.clone();
    fed.write_groups(&[("council", 2)])?;
    let mut r2 = root1.clone();
    r2.version = 2;
    r2.groups
        .insert("council".into(), fed.group_file("council")?.group_id);
    let signer = fed.root_keys[0].clone();
    fed.put_root(&r2, &[&signer], Some(root1))?;
    let (c1, a1) = (fed.council[0].clone(), fed.akash[0].clone());
    fed.sign_file(TREATY, 1, &["akash", "council"], &[&c1, &tpm, &a1], None)?;
    let mut out = vec![case(
        "p256-member-approves",
        "council-3's classical key is ECDSA P-256 (a TPM member; group id v2): with council-1 it approves",
        fed.files.clone(),
        true,
        None,
    )];
    let kid = tpm.classical_public().key_id();
    let honest =
        treaty::dsse::Envelope::parse(&fed.files[&format!("{TREATY}.sig")]).map_err(other)?;
    let raw = honest
        .signatures
        .iter()
        .find(|s| s.keyid == kid)
        .map(|s| s.sig.clone())
        .ok_or_else(|| other("no P-256 entry"))?;
    let sig = p256::ecdsa::Signature::from_slice(&raw).map_err(other)?;
    let (r, s) = sig.split_scalars();
    let high = p256::ecdsa::Signature::from_scalars(r, -*s.as_ref()).map_err(other)?;
    for (name, description, bad) in [
        ("p256-high-s", "council-3's P-256 signature replaced by its high-S twin (n - s): valid ECDSA, but only low S counts", high.to_bytes().to_vec()),
        ("p256-der-signature", "council-3's P-256 signature in ASN.1 DER instead of raw r||s: not counted", sig.to_der().as_bytes().to_vec()),
    ] {
        let mut env = honest.clone();
        for e in env.signatures.iter_mut().filter(|e| e.keyid == kid) {
            e.sig = bad.clone();
        }
        let mut f = fed.files.clone();
        f.insert(format!("{TREATY}.sig"), env.to_bytes());
        out.push(case(name, description, f, false, Some("threshold-not-met")));
    }
    fed.files = saved;
    fed.council = saved_council;
    Ok(out)
}

/// Judges a tree as `treaty verify` does and returns the report.
pub fn judge(
    files: &Files,
    parent: Option<&Files>,
    trust: Option<&[u8]>,
    at: &str,
) -> Result<treaty::verify::Report, VectorsError> {
    let tree = tree_of(files)?;
    let parent = parent.map(tree_of).transpose()?;
    let anchor = match trust {
        Some(b) => {
            treaty::trust::Anchor::Pinned(Box::new(treaty::json::from_slice(b).map_err(other)?))
        }
        None => treaty::trust::Anchor::Repository,
    };
    let opts = treaty::verify::Options {
        anchor,
        at: treaty::time::parse(at).map_err(other)?,
        exhaustive: false,
    };
    Ok(treaty::verify::verify_tree(&tree, parent.as_ref(), &opts))
}

/// Every finding code in a report.
pub fn report_codes(r: &treaty::verify::Report) -> Vec<&'static str> {
    r.findings
        .iter()
        .chain(r.files.iter().flat_map(|f| f.findings.iter()))
        .map(|f| f.code.as_str())
        .collect()
}

/// Generates the vectors into `dir` (`base.json`, `cases/*.json`). Returns the number of cases.
pub fn generate(dir: &Path) -> Result<usize, VectorsError> {
    let mut fed = Fed::new()?;
    let base = fed.files.clone();
    let mut cases: Vec<Case> = Vec::new();
    let case =
        |name, rule, description, files: Files, approved, reason: Option<&'static str>| Case {
            name,
            rule,
            description,
            at: AT,
            files,
            parent: None,
            trust: None,
            approved,
            reason,
            about: vec![TREATY.to_owned()],
        };
    cases.push(case(
        "honest",
        "§6",
        "the base federation: every file approved",
        base.clone(),
        true,
        None,
    ));

    // §6 signatures and statements.
    {
        let mut f = base.clone();
        let mut env = treaty::dsse::Envelope::parse(&f[&format!("{TREATY}.sig")]).map_err(other)?;
        let forged = fed.outsider.sign(&env.signed_bytes())?;
        let kid = fed.council[1].classical_public().key_id();
        for s in env.signatures.iter_mut().filter(|s| s.keyid == kid) {
            s.sig = forged[0].sig.clone();
        }
        f.insert(format!("{TREATY}.sig"), env.to_bytes());
        cases.push(case("forged-signature", "§6", "council-2's Ed25519 entry replaced by an outsider's signature under council-2's key id", f, false, Some("threshold-not-met")));
    }
    {
        let mut f = base.clone();
        let mut t: Value = treaty::json::from_slice(&f[TREATY]).map_err(other)?;
        t["quotas"]["concurrent_jobs"] = 9999.into();
        f.insert(TREATY.into(), json_bytes(&t));
        cases.push(case(
            "content-altered",
            "§6.2",
            "treaty bytes changed after signing (same version)",
            f,
            false,
            Some("digest-mismatch"),
        ));
    }
    {
        let mut f = base.clone();
        let env = fed.treaty_env(
            &f[TREATY],
            1,
            &[&fed.council[0], &fed.council[1], &fed.outsider],
        )?;
        f.insert(format!("{TREATY}.sig"), env);
        cases.push(case(
            "outsider-instead-of-provider",
            "§6.3",
            "the provider's signature comes from a key outside the akash group",
            f,
            false,
            Some("threshold-not-met"),
        ));
    }
    {
        let mut f = base.clone();
        let mut env = treaty::dsse::Envelope::parse(&fed.treaty_env(
            &f[TREATY],
            1,
            &[&fed.council[0], &fed.akash[0]],
        )?)
        .map_err(other)?;
        let again =
            treaty::dsse::Envelope::parse(&fed.treaty_env(&f[TREATY], 1, &[&fed.council[0]])?)
                .map_err(other)?;
        env.signatures.extend(again.signatures);
        f.insert(format!("{TREATY}.sig"), env.to_bytes());
        cases.push(case(
            "member-counted-once",
            "§6.3",
            "council-1 signs twice; council needs 2 distinct members",
            f,
            false,
            Some("threshold-not-met"),
        ));
    }
    {
        let mut f = base.clone();
        let second = "treaties/AURORA-AKASH-002.json";
        let mut t: Value = treaty::json::from_slice(&f[TREATY]).map_err(other)?;
        t["treaty_id"] = "AURORA-AKASH-002".into();
        f.insert(second.into(), json_bytes(&t));
        f.insert(format!("{second}.sig"), f[&format!("{TREATY}.sig")].clone());
        let mut c = case(
            "envelope-copied-to-another-path",
            "§6.2",
            "the approval of AURORA-AKASH-001 copied beside AURORA-AKASH-002",
            f,
            false,
            Some("subject-mismatch"),
        );
        c.about = vec![TREATY.into(), second.into()];
        cases.push(c);
    }
    {
        let mut f = base.clone();
        f.insert(TREATY.into(), fed.treaty(2));
        cases.push(case(
            "approval-of-older-version",
            "§6.2",
            "version 2 content beside version 1's approval",
            f,
            false,
            Some("statement-version-mismatch"),
        ));
    }
    {
        let mut f = base.clone();
        let env = approve(
            TREATY,
            &f[TREATY],
            1,
            fed.refs(&["council"])?,
            Some(EXPIRES.into()),
            &[&fed.council[0], &fed.council[1], &fed.akash[0]],
        )?;
        f.insert(format!("{TREATY}.sig"), env);
        cases.push(case(
            "statement-names-fewer-groups",
            "§6.2",
            "the statement names only council; the delegation requires council and akash",
            f,
            false,
            Some("statement-groups-mismatch"),
        ));
    }
    {
        let mut f = base.clone();
        let mut env = treaty::dsse::Envelope::parse(&f[&format!("{TREATY}.sig")]).map_err(other)?;
        let ml = fed.council[1]
            .mldsa_public()
            .map(|k| k.key_id())
            .unwrap_or_default();
        env.signatures.retain(|s| s.keyid != ml);
        f.insert(format!("{TREATY}.sig"), env.to_bytes());
        cases.push(case(
            "hybrid-member-without-ml-dsa",
            "§6.3",
            "council-2's ML-DSA-65 entry removed: a hybrid member needs both",
            f,
            false,
            Some("threshold-not-met"),
        ));
    }
    {
        let mut f = base.clone();
        let mut env = treaty::dsse::Envelope::parse(&f[&format!("{TREATY}.sig")]).map_err(other)?;
        for s in &mut env.signatures {
            s.keyid = String::new();
        }
        f.insert(format!("{TREATY}.sig"), env.to_bytes());
        cases.push(case(
            "empty-keyid-hints",
            "§6",
            "every keyid emptied: key ids are hints, the signatures still count",
            f,
            true,
            None,
        ));
    }
    {
        let mut f = base.clone();
        let env = approve(
            TREATY,
            &f[TREATY],
            1,
            fed.refs(&["akash", "council"])?,
            Some("2029-06-01T00:00:00Z".into()),
            &[&fed.council[0], &fed.council[1], &fed.akash[0]],
        )?;
        f.insert(format!("{TREATY}.sig"), env);
        cases.push(case(
            "approval-expired",
            "§6.2",
            "the approval expired on 2029-06-01; judged at 2030-01-01",
            f,
            false,
            Some("approval-expired"),
        ));
    }
    {
        let mut c = case(
            "root-expired",
            "§5.1",
            "judged after the root's expiry (2036-01-01)",
            base.clone(),
            false,
            Some("root-expired"),
        );
        c.at = "2036-01-02T00:00:00Z";
        cases.push(c);
    }
    {
        let mut f = base.clone();
        let mut e = f[&format!("{TREATY}.sig")].clone();
        let n = e.len() / 2;
        e.truncate(n);
        f.insert(format!("{TREATY}.sig"), e);
        cases.push(case(
            "envelope-truncated",
            "§4",
            "the envelope cut in half",
            f,
            false,
            Some("envelope-malformed"),
        ));
    }
    {
        let mut f = base.clone();
        let mut env = treaty::dsse::Envelope::parse(&f[&format!("{TREATY}.sig")]).map_err(other)?;
        let kid = fed.akash[0].classical_public().key_id();
        for s in env.signatures.iter_mut().filter(|s| s.keyid == kid) {
            s.sig[5] ^= 0x01;
        }
        f.insert(format!("{TREATY}.sig"), env.to_bytes());
        cases.push(case(
            "signature-bit-flip",
            "§6.3",
            "one bit of akash-1's signature flipped",
            f,
            false,
            Some("threshold-not-met"),
        ));
    }
    {
        let mut f = base.clone();
        f.remove(&format!("{TREATY}.sig"));
        cases.push(case(
            "approval-missing",
            "§6.1",
            "the treaty has no envelope",
            f,
            false,
            Some("signature-missing"),
        ));
    }
    {
        let mut f = base.clone();
        f.remove(TREATY);
        let mut c = case(
            "orphan-envelope",
            "§2",
            "the treaty deleted, its envelope kept",
            f,
            false,
            Some("orphan-signature"),
        );
        c.about = vec![];
        cases.push(c);
    }
    {
        let mut f = base.clone();
        f.insert("treaties/notes.json".into(), b"{}\n".to_vec());
        let mut c = case(
            "uncovered-file",
            "§7",
            "a file under treaties/ that no delegation covers",
            f,
            false,
            Some("uncovered-file"),
        );
        c.about = vec![TREATY.into(), "treaties/notes.json".into()];
        cases.push(c);
    }
    {
        let mut f = base.clone();
        let mut t: Value = treaty::json::from_slice(&f[TREATY]).map_err(other)?;
        t["spec_version"] = "2.0".into();
        f.insert(TREATY.into(), json_bytes(&t));
        cases.push(case(
            "unknown-spec-major",
            "§3",
            "a treaty with spec_version 2.0",
            f,
            false,
            Some("spec-version-unsupported"),
        ));
    }

    // §1.1 and §4: strict JSON and strict statements (issue 12). Each refusal has an honest
    // twin that both verifiers approve.
    {
        let sig = format!("{TREATY}.sig");
        let signers = [&*fed.council[0], &*fed.council[1], &*fed.akash[0]];
        // (name, rule, description, edit of the honest payload's text, approved, reason)
        type PayloadCase = (
            &'static str,
            &'static str,
            &'static str,
            fn(&str) -> String,
            bool,
            Option<&'static str>,
        );
        let payload_cases: [PayloadCase; 21] = [
            (
                "statement-duplicate-key",
                "§1.1",
                "the payload has \"version\" twice (9, then 1); every signature is valid over it",
                |t| t.replacen("\"version\":1", "\"version\":9,\"version\":1", 1),
                false,
                Some("duplicate-key"),
            ),
            (
                "statement-duplicate-key-escaped",
                "§1.1",
                "the payload repeats \"version\" spelled \"v\\u0065rsion\": equal after unescaping",
                |t| t.replacen("\"version\":1", "\"version\":9,\"v\\u0065rsion\":1", 1),
                false,
                Some("duplicate-key"),
            ),
            (
                "statement-spec-version-signed",
                "§1.2",
                "predicate spec_version \"+1.+0\"",
                |t| t.replacen("\"spec_version\":\"1.0\"", "\"spec_version\":\"+1.+0\"", 1),
                false,
                Some("spec-version-unsupported"),
            ),
            (
                "statement-spec-version-leading-zero",
                "§1.2",
                "predicate spec_version \"01.0\"",
                |t| t.replacen("\"spec_version\":\"1.0\"", "\"spec_version\":\"01.0\"", 1),
                false,
                Some("spec-version-unsupported"),
            ),
            (
                "statement-spec-version-space",
                "§1.2",
                "predicate spec_version \" 1.0\"",
                |t| t.replacen("\"spec_version\":\"1.0\"", "\"spec_version\":\" 1.0\"", 1),
                false,
                Some("spec-version-unsupported"),
            ),
            (
                "statement-spec-version-other-minor",
                "§1.2",
                "predicate spec_version \"1.7\": another minor of major 1 is read",
                |t| t.replacen("\"spec_version\":\"1.0\"", "\"spec_version\":\"1.7\"", 1),
                true,
                None,
            ),
            (
                "statement-expires-null",
                "§4",
                "predicate expires null: present means a string",
                |t| t.replacen(&format!("\"expires\":\"{EXPIRES}\""), "\"expires\":null", 1),
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-expires-lowercase-t",
                "§1",
                "predicate expires with a lowercase t separator",
                |t| {
                    let e = EXPIRES.to_owned();
                    let new = e.replacen('T', "t", 1);
                    t.replacen(
                        &format!("\"expires\":\"{EXPIRES}\""),
                        &format!("\"expires\":\"{new}\""),
                        1,
                    )
                },
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-expires-space",
                "§1",
                "predicate expires with a space separator",
                |t| {
                    let e = EXPIRES.to_owned();
                    let new = e.replacen('T', " ", 1);
                    t.replacen(
                        &format!("\"expires\":\"{EXPIRES}\""),
                        &format!("\"expires\":\"{new}\""),
                        1,
                    )
                },
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-expires-lowercase-z",
                "§1",
                "predicate expires with a lowercase z",
                |t| {
                    let e = EXPIRES.to_owned();
                    let new = e.replacen('Z', "z", 1);
                    t.replacen(
                        &format!("\"expires\":\"{EXPIRES}\""),
                        &format!("\"expires\":\"{new}\""),
                        1,
                    )
                },
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-expires-ten-fraction-digits",
                "§1",
                "predicate expires with 10 fraction digits",
                |t| {
                    let e = EXPIRES.to_owned();
                    let new = e.replacen('Z', ".0123456789Z", 1);
                    t.replacen(
                        &format!("\"expires\":\"{EXPIRES}\""),
                        &format!("\"expires\":\"{new}\""),
                        1,
                    )
                },
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-expires-leap-second",
                "§1",
                "predicate expires at second 60",
                |t| {
                    let new = "2035-12-31T23:59:60Z".to_owned();
                    t.replacen(
                        &format!("\"expires\":\"{EXPIRES}\""),
                        &format!("\"expires\":\"{new}\""),
                        1,
                    )
                },
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-expires-past-9999",
                "§1",
                "predicate expires whose UTC instant is in year 10000",
                |t| {
                    let new = "9999-12-31T23:30:00-01:00".to_owned();
                    t.replacen(
                        &format!("\"expires\":\"{EXPIRES}\""),
                        &format!("\"expires\":\"{new}\""),
                        1,
                    )
                },
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-expires-before-0001",
                "§1",
                "predicate expires whose UTC instant is in year 0000",
                |t| {
                    let new = "0001-01-01T00:30:00+01:00".to_owned();
                    t.replacen(
                        &format!("\"expires\":\"{EXPIRES}\""),
                        &format!("\"expires\":\"{new}\""),
                        1,
                    )
                },
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-expires-offset",
                "§1",
                "predicate expires with a +00:00 offset and 9 fraction digits (the spec form)",
                |t| {
                    let e = EXPIRES.to_owned();
                    let new = e.replacen('Z', ".123456789+00:00", 1);
                    t.replacen(
                        &format!("\"expires\":\"{EXPIRES}\""),
                        &format!("\"expires\":\"{new}\""),
                        1,
                    )
                },
                true,
                None,
            ),
            (
                "statement-without-expires",
                "§4",
                "predicate without expires: absent means no expiry",
                |t| t.replacen(&format!(",\"expires\":\"{EXPIRES}\""), "", 1),
                true,
                None,
            ),
            (
                "statement-version-fraction",
                "§1.2",
                "predicate version written 1.0",
                |t| t.replacen("\"version\":1", "\"version\":1.0", 1),
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-version-exponent",
                "§1.2",
                "predicate version written 1e0",
                |t| t.replacen("\"version\":1", "\"version\":1e0", 1),
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-version-negative-zero",
                "§1.2",
                "predicate version written -0",
                |t| t.replacen("\"version\":1", "\"version\":-0", 1),
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-bom",
                "§1.1",
                "the payload starts with a UTF-8 byte order mark",
                |t| format!("\u{feff}{t}"),
                false,
                Some("statement-malformed"),
            ),
            (
                "statement-lone-surrogate",
                "§1.1",
                "a string in the payload escapes a lone surrogate",
                |t| t.replacen("\"name\":\"akash\"", "\"name\":\"akash\\ud800\"", 1),
                false,
                Some("statement-malformed"),
            ),
        ];
        for (name, rule, description, edit, approved, reason) in payload_cases {
            let mut f = base.clone();
            f.insert(sig.clone(), fed.treaty_payload_edited(&base[TREATY], edit)?);
            cases.push(case(name, rule, description, f, approved, reason));
        }
        // The envelope itself.
        let honest_env = String::from_utf8(base[&sig].clone()).map_err(other)?;
        {
            let decoy = treaty::statement::Statement::new(
                TREATY,
                b"{}",
                1,
                fed.refs(&["akash", "council"])?,
                None,
            );
            let twice = honest_env.replacen(
                "\"payload\":",
                &format!(
                    "\"payload\": \"{}\",\n  \"payload\":",
                    b64(&decoy.to_bytes())
                ),
                1,
            );
            let mut f = base.clone();
            f.insert(sig.clone(), twice.into_bytes());
            cases.push(case(
                "envelope-duplicate-key",
                "§1.1",
                "the envelope has \"payload\" twice: a decoy statement, then the signed one",
                f,
                false,
                Some("duplicate-key"),
            ));
        }
        {
            let mut f = base.clone();
            let mut b = b"\xEF\xBB\xBF".to_vec();
            b.extend_from_slice(honest_env.as_bytes());
            f.insert(sig.clone(), b);
            cases.push(case(
                "envelope-bom",
                "§1.1",
                "the envelope starts with a UTF-8 byte order mark",
                f,
                false,
                Some("envelope-malformed"),
            ));
        }
        {
            let mut f = base.clone();
            let utf16: Vec<u8> = honest_env
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect();
            f.insert(sig.clone(), [&[0xFF, 0xFE][..], &utf16].concat());
            cases.push(case(
                "envelope-utf16",
                "§1.1",
                "the envelope in UTF-16 with its byte order mark: JSON here is UTF-8",
                f,
                false,
                Some("envelope-malformed"),
            ));
        }
        {
            let v = treaty::json::parse_value(&base[&sig]).map_err(other)?;
            let reordered = json!({
                "signatures": v["signatures"],
                "x-note": { "payload": "ignored" },
                "payload": v["payload"],
                "payloadType": v["payloadType"],
            });
            let mut f = base.clone();
            f.insert(sig.clone(), json_bytes(&reordered));
            cases.push(case(
                "envelope-extra-member-ignored",
                "§4",
                "members reordered and an unknown member added: ignored, the approval stands",
                f,
                true,
                None,
            ));
        }
        // The treaty document.
        let honest_treaty = String::from_utf8(base[TREATY].clone()).map_err(other)?;
        let doc_cases: [(
            &'static str,
            &'static str,
            &'static str,
            String,
            Option<&'static str>,
        ); 5] = [
            (
                "treaty-duplicate-key",
                "§1.1",
                "the signed treaty has \"status\" twice: \"revoked\", then \"active\"",
                honest_treaty.replacen(
                    "\"status\": \"active\",",
                    "\"status\": \"revoked\",\n  \"status\": \"active\",",
                    1,
                ),
                Some("duplicate-key"),
            ),
            (
                "treaty-version-fraction",
                "§1.2",
                "the signed treaty's version is written 1.0",
                honest_treaty.replacen("\"version\": 1,", "\"version\": 1.0,", 1),
                Some("schema-invalid"),
            ),
            (
                "treaty-bom",
                "§1.1",
                "the signed treaty starts with a UTF-8 byte order mark",
                format!("\u{feff}{honest_treaty}"),
                Some("parse-error"),
            ),
            (
                "treaty-number-out-of-range",
                "§1.1",
                "a number in the signed treaty is beyond the double range (1e400)",
                honest_treaty.replacen("\"min_reputation\": 0.8", "\"min_reputation\": 1e400", 1),
                Some("parse-error"),
            ),
            (
                "treaty-nested-too-deep",
                "§1.1",
                "the signed treaty nests 65 arrays and objects",
                honest_treaty.replacen(
                    "\"regions\":",
                    &format!(
                        "\"deep\": {}1{},\n  \"regions\":",
                        "[".repeat(64),
                        "]".repeat(64)
                    ),
                    1,
                ),
                Some("parse-error"),
            ),
        ];
        for (name, rule, description, text, reason) in doc_cases {
            if text == honest_treaty {
                return Err(other(format!("case {name}: the edit changed nothing")));
            }
            let mut f = base.clone();
            let bytes = text.into_bytes();
            f.insert(sig.clone(), fed.treaty_env(&bytes, 1, &signers)?);
            f.insert(TREATY.into(), bytes);
            cases.push(case(name, rule, description, f, false, reason));
        }
        // Group files: an optional member present as null, a threshold that is a boolean.
        for (name, description, edit) in [
            (
                "group-member-key-null",
                "council-3's ml_dsa_65 is null: present means a string, not \"Ed25519 only\"",
                (|g: &mut Value| g["members"][2]["ml_dsa_65"] = Value::Null) as fn(&mut Value),
            ),
            (
                "group-threshold-boolean",
                "council's threshold is true",
                |g: &mut Value| g["threshold"] = Value::Bool(true),
            ),
        ] {
            let mut f = base.clone();
            let mut g = treaty::json::parse_value(&f["keys/groups/council.json"]).map_err(other)?;
            edit(&mut g);
            f.insert("keys/groups/council.json".into(), json_bytes(&g));
            let mut c = case(name, "§1.1", description, f, false, Some("group-invalid"));
            c.about = vec![TREATY.into(), "keys/groups/council.json".into()];
            cases.push(c);
        }
    }
    // §7 rollback.
    {
        let mut parent = base.clone();
        parent.insert(TREATY.into(), fed.treaty(2));
        let env = fed.treaty_env(
            &parent[TREATY],
            2,
            &[&fed.council[0], &fed.council[1], &fed.akash[0]],
        )?;
        parent.insert(format!("{TREATY}.sig"), env);
        let mut c = case(
            "version-rollback",
            "§7",
            "the parent approved version 2; this tree restores version 1 with its valid approval",
            base.clone(),
            false,
            Some("version-rollback"),
        );
        c.parent = Some(parent);
        cases.push(c);
    }
    {
        let mut parent = base.clone();
        let mut t: Value = treaty::json::from_slice(&base[TREATY]).map_err(other)?;
        t["regions"] = json!(["us-east"]);
        parent.insert(TREATY.into(), json_bytes(&t));
        let env = fed.treaty_env(
            &parent[TREATY],
            1,
            &[&fed.council[0], &fed.council[1], &fed.akash[0]],
        )?;
        parent.insert(format!("{TREATY}.sig"), env);
        let mut c = case(
            "version-equivocation",
            "§7",
            "the parent approved other bytes under the same version",
            base.clone(),
            false,
            Some("version-equivocation"),
        );
        c.parent = Some(parent);
        cases.push(c);
    }
    // §5 trust.
    {
        let mut f = base.clone();
        let mut g: Value =
            treaty::json::from_slice(&f["keys/groups/council.json"]).map_err(other)?;
        g["threshold"] = 1.into();
        f.insert("keys/groups/council.json".into(), json_bytes(&g));
        let mut c = case(
            "group-changed-without-root-update",
            "§5.2",
            "council's threshold lowered in its file; the root's pin is unchanged",
            f,
            false,
            Some("group-id-mismatch"),
        );
        c.about = vec![TREATY.into(), "keys/groups/council.json".into()];
        cases.push(c);
    }
    let root1: Root = fed.current_root()?;
    {
        // Revocation (root v2, approved by the root group).
        let saved = fed.files.clone();
        let mut r2 = root1.clone();
        r2.version = 2;
        r2.revoked.push(treaty::governance::model::Revocation {
            keyid: fed.council[0].classical_public().key_id(),
            reason: treaty::governance::model::RevocationReason::Retired,
            time: CREATED.into(),
        });
        let signer = fed.root_keys[0].clone();
        fed.put_root(&r2, &[&signer], None)?;
        let mut c = case(
            "revoked-key",
            "§6.3",
            "root version 2 revokes council-1's Ed25519 key; council-1 no longer counts",
            fed.files.clone(),
            false,
            Some("threshold-not-met"),
        );
        c.about = vec![TREATY.into(), "keys/root.json".into()];
        cases.push(c);
        fed.files = saved;
    }
    cases.extend(p256_cases(&mut fed, &root1)?);
    let new_root = Rc::new(key("root-new")?);
    let old_root = fed.root_keys[0].clone();
    let mut r2 = root1.clone();
    r2.version = 2;
    r2.root_group = group_body(ROOT_GROUP, 1, vec![member_entry(&new_root)])?;
    for (name, signers, approved, reason, desc) in [
        ("root-rotation-new-only", vec![&new_root], false, Some("root-signature-threshold"), "root version 2 (new root group) signed only by the new root group"),
        ("root-rotation-old-only", vec![&old_root], false, Some("root-signature-threshold"), "root version 2 (new root group) signed only by the old root group"),
        ("root-rotation-both", vec![&old_root, &new_root], true, None, "root version 2 signed by the old and the new root group; root-delegated files re-approved by the new group"),
    ] {
        let saved = fed.files.clone();
        let bytes = json_bytes(&r2);
        let refs = vec![
            GroupRef { name: ROOT_GROUP.into(), group_id: root1.root_group.group_id.clone() },
            GroupRef { name: ROOT_GROUP.into(), group_id: r2.root_group.group_id.clone() },
        ];
        let signers: Vec<&SigningKey> = signers.iter().map(|k| k.as_ref()).collect();
        let env = approve(treaty::trust::ROOT_PATH, &bytes, 2, refs, Some(EXPIRES.into()), &signers)?;
        fed.files.insert("keys/root.json".into(), bytes.clone());
        fed.files.insert("keys/roots/2.json".into(), bytes);
        fed.files.insert("keys/root.json.sig".into(), env.clone());
        fed.files.insert("keys/roots/2.json.sig".into(), env);
        for s in ["treaty", "root", "group"] {
            let rel = format!("schemas/{s}.schema.json");
            let version = schema_version(fed.files.get(&rel).map_or(&[][..], Vec::as_slice))?;
            fed.sign_file(&rel, version, &[ROOT_GROUP], &[&new_root], None)?;
        }
        let mut c = case(name, "§5.1", desc, fed.files.clone(), approved, reason);
        c.about = vec![TREATY.into(), "keys/roots/2.json".into()];
        cases.push(c);
        if name == "root-rotation-both" {
            // Skipping version 2: the same content published as version 3.
            let mut f = fed.files.clone();
            let mut r3 = r2.clone();
            r3.version = 3;
            let b3 = json_bytes(&r3);
            f.remove("keys/roots/2.json");
            f.remove("keys/roots/2.json.sig");
            f.insert("keys/root.json".into(), b3.clone());
            f.insert("keys/roots/3.json".into(), b3);
            let mut c = case("root-version-skipped", "§5.1", "root version 3 without version 2", f, false, Some("root-chain-broken"));
            c.about = vec![TREATY.into()];
            cases.push(c);
            // A verifier that pinned version 1 follows 1 → 2.
            let mut c = case("pinned-root-followed", "§5.1", "trust pinned at version 1 walks to version 2", fed.files.clone(), true, None);
            c.trust = Some(base["keys/root.json"].clone());
            cases.push(c);
        }
        fed.files = saved;
    }
    {
        let mut foreign = root1.clone();
        foreign.root_group = group_body(ROOT_GROUP, 1, vec![member_entry(&fed.outsider)])?;
        let mut c = case(
            "pinned-root-foreign",
            "§5.1",
            "trust pinned at another federation's version 1",
            base.clone(),
            false,
            Some("root-not-pinned"),
        );
        c.trust = Some(json_bytes(&foreign));
        cases.push(c);
    }
    {
        // One key in both groups a delegation requires (root v2 pins the changed akash group).
        let saved = fed.files.clone();
        let mut g = fed.group_file("akash")?;
        let mut dual = member_entry(&fed.council[0]);
        dual.id = "akash-dual".into();
        g.members.push(dual);
        let body = group_body("akash", 1, g.members.clone())?;
        g.group_id = body.group_id.clone();
        fed.files
            .insert("keys/groups/akash.json".into(), json_bytes(&g));
        let mut r = root1.clone();
        r.version = 2;
        r.groups.insert("akash".into(), body.group_id);
        fed.put_root(&r, &[&old_root], None)?;
        let mut c = case(
            "key-in-two-required-groups",
            "§5.3",
            "council-1's keys also in the akash group; one person must not speak for both parties",
            fed.files.clone(),
            false,
            Some("delegation-conflict"),
        );
        c.about = vec![TREATY.into()];
        cases.push(c);
        fed.files = saved;
    }

    // Judge every case; refuse to write a vector whose verdict is not the intended one.
    std::fs::create_dir_all(dir.join("cases")).map_err(|e| {
        VectorsError::Scaffold(ScaffoldError::Io {
            path: dir.display().to_string(),
            source: e,
        })
    })?;
    let base_json = json!({ "files": base.iter().map(|(p, b)| (p.clone(), json!(b64(b)))).collect::<serde_json::Map<_, _>>() });
    write_atomic(&dir.join("base.json"), &json_bytes(&base_json))?;
    for c in &cases {
        let r = judge(&c.files, c.parent.as_ref(), c.trust.as_deref(), c.at)?;
        let codes = report_codes(&r);
        if r.approved != c.approved || c.reason.is_some_and(|why| !codes.contains(&why)) {
            return Err(other(format!(
                "case {}: intended approved={} reason={:?}, got approved={} codes={codes:?}",
                c.name, c.approved, c.reason, r.approved
            )));
        }
        let files: serde_json::Map<String, Value> = c
            .about
            .iter()
            .filter_map(|p| {
                r.files
                    .iter()
                    .find(|v| &v.path == p)
                    .map(|v| (p.clone(), json!(v.approved)))
            })
            .collect();
        let (set, remove) = diff(&base, &c.files);
        let enc = |m: &BTreeMap<String, Vec<u8>>| {
            m.iter()
                .map(|(p, b)| (p.clone(), json!(b64(b))))
                .collect::<serde_json::Map<_, _>>()
        };
        let mut v = json!({
            "name": c.name, "rule": c.rule, "description": c.description, "layer": "signatures", "at": c.at,
            "set": enc(&set), "remove": remove,
            "expect": { "approved": c.approved, "reason": c.reason, "files": files },
        });
        if let Some(t) = &c.trust {
            v["trust"] = json!(b64(t));
        }
        if let Some(p) = &c.parent {
            let (pset, premove) = diff(&base, p);
            v["parent"] = json!({ "set": enc(&pset), "remove": premove });
        }
        write_atomic(&dir.join(format!("cases/{}.json", c.name)), &json_bytes(&v))?;
    }
    messages::generate(dir)?;
    Ok(cases.len())
}
