//! The signing half of a release ceremony: officers' hybrid signatures over a manifest, the
//! seal that checks the release group's threshold, RFC 3161 timestamps over the seal, and the
//! authenticity and time layers of `treaty release verify`.
//!
//! Owns the release statement (an in-toto Statement v1 with predicate
//! `https://treaty.dev/release/v1`, in a DSSE envelope, signed like approvals) and the files a
//! ceremony adds beside a bundle:
//!
//! - `NAME.signatures/<member>.json`: one officer's envelope, so signatures made offline on
//!   separate machines merge by copying files, never by editing one;
//! - `NAME.seal.json`: the manifest's digests, the release group (members and threshold, bound
//!   by its pinned `group_id`) and one envelope holding every counted signature;
//! - `NAME.timestamps/<authority>.tsr`: RFC 3161 responses over the seal's bytes.
//!
//! It never trusts the group a seal embeds: the embedded body must hash to the `group_id` the
//! verified root pins for the `release` role (the newest root, or the root version the seal
//! names when that version is part of the verified chain). A key revoked as compromised never
//! counts; a key retired after a timestamp proves the seal existed still counts.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::{io, write, ReleaseError};
use crate::crypto::{blake3_hex, sha256_hex, SigningKey};
use crate::dsse::{Envelope, Signature};
use crate::governance::model::{Group, GroupBody, GroupFile, Revocation};
use crate::source::Tree;
use crate::statement::{GroupRef, Subject, STATEMENT_TYPE};
use crate::trust::Anchor;

/// The predicate type of a release signature.
pub const RELEASE_PREDICATE: &str = "https://treaty.dev/release/v1";
/// The role in `keys/root.json` that names the release group.
pub const RELEASE_ROLE: &str = crate::governance::model::Role::Release.as_str();
/// Where the trusted authority roots live (a governed file).
pub use crate::governance::TSA_ROOTS_PATH;

/// What a release officer signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseStatement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: ReleasePredicate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasePredicate {
    pub spec_version: String,
    /// The bundle's NAME.
    pub release: String,
    /// The archive's SHA-256 and the files' Merkle root, repeated from the manifest so a
    /// signature names what it releases without the manifest at hand.
    pub archive_sha256: String,
    pub merkle_root: String,
    /// The release group, by name and pinned id.
    pub group: GroupRef,
    /// The root version that pinned it when signing.
    pub root_version: u64,
}

/// The release group and everything else a ceremony judges with, from a verified root.
#[derive(Debug, Clone)]
pub struct ReleaseTrust {
    pub group: Group,
    pub body: GroupBody,
    pub root_version: u64,
    /// The newest root's revocations.
    pub revoked: HashMap<String, Revocation>,
    /// `release` group pins of every root version in the verified chain, by version.
    pub pins: BTreeMap<u64, String>,
    /// `keys/tsa-roots.pem`, when it is present and approved.
    pub tsa_roots: Option<Vec<u8>>,
    /// Why the TSA roots are unusable, when they are.
    pub tsa_problem: Option<String>,
}

/// Loads the release group from the verified root of `tree`.
pub fn release_trust(tree: &Tree, anchor: &Anchor) -> Result<ReleaseTrust, ReleaseError> {
    let refuse = |m: String| ReleaseError::Refused(m);
    let now = crate::time::now();
    let (trust, findings) = crate::trust::load(tree, anchor, now);
    let Some(trust) = trust.filter(|t| t.chain_ok) else {
        let why: Vec<String> = findings
            .iter()
            .filter(|f| f.is_error())
            .map(ToString::to_string)
            .collect();
        return Err(refuse(format!(
            "the root of trust does not verify, so no release group can be trusted: {}",
            why.join("; ")
        )));
    };
    let name = trust.root.roles.get(RELEASE_ROLE).ok_or_else(|| {
        refuse(format!(
            "keys/root.json names no {RELEASE_ROLE:?} role; add it with a root update"
        ))
    })?;
    let group = trust.groups.get(name).cloned().ok_or_else(|| {
        let why = trust
            .broken_groups
            .get(name)
            .cloned()
            .unwrap_or_else(|| "not pinned by the root".into());
        refuse(format!("release group {name:?}: {why}"))
    })?;
    let gpath = format!("keys/groups/{name}.json");
    let body = tree
        .file(&gpath)
        .and_then(|b| crate::json::from_slice::<GroupFile>(&b).ok())
        .map(|g| GroupBody {
            threshold: g.threshold,
            members: g.members,
            group_id: g.group_id,
        })
        .ok_or_else(|| refuse(format!("{gpath}: unreadable")))?;
    let mut pins = BTreeMap::new();
    for (path, judged) in &trust.root_files {
        let Some(v) = path
            .strip_prefix("keys/roots/")
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if !judged.approved && v != trust.anchor_version {
            continue;
        }
        let root: Option<crate::governance::model::Root> = tree
            .file(path)
            .and_then(|b| crate::json::from_slice(&b).ok());
        if let Some(id) = root.and_then(|r| {
            let n = r.roles.get(RELEASE_ROLE)?.clone();
            r.groups.get(&n).cloned()
        }) {
            pins.insert(v, id);
        }
    }
    pins.insert(trust.root.version, group.group_id.clone());
    let (tsa_roots, tsa_problem) = match approved_tsa_roots(tree, anchor) {
        Ok(b) => (Some(b), None),
        Err(m) => (None, Some(m.to_string())),
    };
    Ok(ReleaseTrust {
        group,
        body,
        root_version: trust.root.version,
        revoked: trust.revoked.clone(),
        pins,
        tsa_roots,
        tsa_problem,
    })
}

/// `keys/tsa-roots.pem` of `tree`, when present and approved like any governed file.
/// Why the approved TSA roots cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsaRootsError {
    #[error("{TSA_ROOTS_PATH} is absent; add the authorities' root certificates and approve it")]
    Absent,
    #[error("{TSA_ROOTS_PATH} is not approved: {}", findings.join("; "))]
    NotApproved { findings: Vec<String> },
    #[error("{TSA_ROOTS_PATH} was not judged")]
    NotJudged,
}

/// `keys/tsa-roots.pem` of `tree`, when present and approved like any governed file.
pub fn approved_tsa_roots(tree: &Tree, anchor: &Anchor) -> Result<Vec<u8>, TsaRootsError> {
    let Some(bytes) = tree.file(TSA_ROOTS_PATH) else {
        return Err(TsaRootsError::Absent);
    };
    match crate::verify::judge_one(tree, anchor, TSA_ROOTS_PATH) {
        Some(f) if f.approved => Ok(bytes.into_owned()),
        Some(f) => Err(TsaRootsError::NotApproved {
            findings: f.findings.iter().map(ToString::to_string).collect(),
        }),
        None => Err(TsaRootsError::NotJudged),
    }
}

fn manifest_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.manifest.json"))
}

/// The folder of per-officer signatures.
pub fn signatures_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.signatures"))
}

pub fn seal_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.seal.json"))
}

pub fn timestamps_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.timestamps"))
}

/// The statement every officer of this release signs: the same bytes for all of them.
pub fn statement(
    name: &str,
    manifest: &[u8],
    rt: &ReleaseTrust,
) -> Result<ReleaseStatement, ReleaseError> {
    let m: serde_json::Value = crate::json::parse_value(manifest)
        .map_err(|e| ReleaseError::Refused(format!("manifest is not JSON: {e}")))?;
    let field = |a: &str, b: &str| {
        m[a][b]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ReleaseError::Refused(format!("manifest lacks {a}.{b}")))
    };
    let mut digest = BTreeMap::new();
    digest.insert("blake3".to_owned(), blake3_hex(manifest));
    digest.insert("sha256".to_owned(), sha256_hex(manifest));
    Ok(ReleaseStatement {
        type_: STATEMENT_TYPE.to_owned(),
        subject: vec![Subject {
            name: format!("{name}.manifest.json"),
            digest,
        }],
        predicate_type: RELEASE_PREDICATE.to_owned(),
        predicate: ReleasePredicate {
            spec_version: crate::SPEC_VERSION.to_owned(),
            release: name.to_owned(),
            archive_sha256: field("archive", "sha256")?,
            merkle_root: field("merkle", "root")?,
            group: GroupRef {
                name: rt.group.name.clone(),
                group_id: rt.group.group_id.clone(),
            },
            root_version: rt.root_version,
        },
    })
}

fn statement_bytes(s: &ReleaseStatement) -> Vec<u8> {
    serde_json::to_vec(s).unwrap_or_default()
}

/// `treaty release sign`: checks the bundle's integrity, then writes this officer's envelope
/// to `NAME.signatures/<member>.json`. Refused for a key that is not a release group member.
pub fn sign(
    dir: &Path,
    name: &str,
    key: &SigningKey,
    rt: &ReleaseTrust,
) -> Result<PathBuf, ReleaseError> {
    let layers = super::verify(dir, name)?;
    if let Some(bad) = layers.iter().find(|l| l.layer == "integrity" && !l.ok) {
        return Err(ReleaseError::Refused(format!(
            "the bundle fails its integrity check, so it must not be signed: {}",
            bad.detail
        )));
    }
    let ed = key.classical_public().key_id();
    let member = rt
        .group
        .members
        .iter()
        .find(|m| m.keys_with_ids().any(|(_, id)| id == ed))
        .ok_or_else(|| {
            ReleaseError::Refused(format!(
                "key {ed} ({}) is not a member of release group {:?}; its signature would not count",
                key.member_id, rt.group.name
            ))
        })?;
    if let Some(r) = member
        .keys_with_ids()
        .find_map(|(_, id)| rt.revoked.get(id))
    {
        return Err(ReleaseError::Refused(format!(
            "key {} of {} is revoked ({:?} since {}); it cannot sign",
            r.keyid, member.id, r.reason, r.time
        )));
    }
    let mpath = manifest_path(dir, name);
    let manifest = std::fs::read(&mpath).map_err(io(&mpath))?;
    let payload = statement_bytes(&statement(name, &manifest, rt)?);
    let signatures = crate::dsse::sign(key, crate::dsse::PAYLOAD_TYPE, &payload)
        .map_err(|e| ReleaseError::Refused(format!("cannot sign: {e}")))?;
    let env = Envelope {
        payload,
        signatures,
    };
    let sdir = signatures_dir(dir, name);
    std::fs::create_dir_all(&sdir).map_err(io(&sdir))?;
    let out = sdir.join(format!("{}.json", member.id));
    write(&out, &env.to_bytes())?;
    Ok(out)
}

/// `NAME.seal.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    pub spec_version: String,
    pub kind: String,
    pub name: String,
    pub manifest: SealedManifest,
    pub root_version: u64,
    pub group_name: String,
    pub group: GroupBody,
    /// One DSSE envelope with every counted signature.
    pub envelope: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedManifest {
    pub name: String,
    pub sha256: String,
    pub blake3: String,
}

/// What sealing did.
#[derive(Debug, Clone, Serialize)]
pub struct Sealed {
    pub path: String,
    pub signed: Vec<String>,
    pub threshold: usize,
    /// Signature files that were not counted, with the reason.
    pub ignored: Vec<(String, String)>,
}

/// `treaty release seal`: merges the officers' signatures that verify, checks the release
/// group's threshold and writes `NAME.seal.json`. Refuses, naming who signed and who may
/// still sign, when the threshold is not met.
pub fn seal(dir: &Path, name: &str, rt: &ReleaseTrust) -> Result<Sealed, ReleaseError> {
    let mpath = manifest_path(dir, name);
    let manifest = std::fs::read(&mpath).map_err(io(&mpath))?;
    let layers = super::verify(dir, name)?;
    if let Some(bad) = layers.iter().find(|l| l.layer == "integrity" && !l.ok) {
        return Err(ReleaseError::Refused(format!(
            "the bundle fails its integrity check: {}",
            bad.detail
        )));
    }
    let payload = statement_bytes(&statement(name, &manifest, rt)?);
    let sdir = signatures_dir(dir, name);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&sdir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(&sdir)(e)),
    };
    files.sort();
    let mut ignored = Vec::new();
    let mut sigs: Vec<Signature> = Vec::new();
    for f in &files {
        let shown = f.display().to_string();
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                ignored.push((shown, e.to_string()));
                continue;
            }
        };
        match Envelope::parse(&bytes) {
            Ok(env) if env.payload == payload => sigs.extend(env.signatures),
            Ok(_) => ignored.push((
                shown,
                "signs another statement (another release, manifest, group or root version)".into(),
            )),
            Err(e) => ignored.push((shown, e.to_string())),
        }
    }
    sigs.sort_by(|a, b| (&a.keyid, &a.sig).cmp(&(&b.keyid, &b.sig)));
    sigs.dedup();
    let env = Envelope {
        payload: payload.clone(),
        signatures: sigs,
    };
    let (tallies, _) = crate::verify::tally(
        &env,
        &format!("{name}.seal.json"),
        &sdir.display().to_string(),
        &[&rt.group],
        &rt.revoked,
        true,
    );
    let t = tallies
        .into_iter()
        .next()
        .ok_or_else(|| ReleaseError::Refused("no release group tally".into()))?;
    if !t.met {
        return Err(ReleaseError::Refused(format!(
            "release group {:?} has {} of {} required signatures (signed: {}); may still sign: {}{}",
            t.name,
            t.signed.len(),
            t.threshold,
            if t.signed.is_empty() { "nobody".to_owned() } else { t.signed.join(", ") },
            t.may_sign.join(", "),
            if ignored.is_empty() {
                String::new()
            } else {
                format!(
                    "; not counted: {}",
                    ignored
                        .iter()
                        .map(|(f, why)| format!("{f} ({why})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )));
    }
    // Keep only the signatures of members who counted, so the seal carries nothing unverified.
    let counted: Vec<String> = rt
        .group
        .members
        .iter()
        .filter(|m| t.signed.contains(&m.id))
        .flat_map(|m| {
            m.keys_with_ids()
                .map(|(_, id)| id.to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let env = Envelope {
        payload,
        signatures: env
            .signatures
            .into_iter()
            .filter(|s| counted.contains(&s.keyid))
            .collect(),
    };
    let envelope: serde_json::Value = crate::json::parse_value(&env.to_bytes())
        .map_err(|e| ReleaseError::Refused(e.to_string()))?;
    let seal = Seal {
        spec_version: crate::SPEC_VERSION.to_owned(),
        kind: "treaty-release-seal".into(),
        name: name.to_owned(),
        manifest: SealedManifest {
            name: format!("{name}.manifest.json"),
            sha256: sha256_hex(&manifest),
            blake3: blake3_hex(&manifest),
        },
        root_version: rt.root_version,
        group_name: rt.group.name.clone(),
        group: rt.body.clone(),
        envelope,
    };
    let mut bytes =
        serde_json::to_vec_pretty(&seal).map_err(|e| ReleaseError::Refused(e.to_string()))?;
    bytes.push(b'\n');
    let out = seal_path(dir, name);
    write(&out, &bytes)?;
    Ok(Sealed {
        path: out.display().to_string(),
        signed: t.signed,
        threshold: t.threshold,
        ignored,
    })
}

/// One authority's outcome in `treaty release timestamp`.
#[derive(Debug, Clone, Serialize)]
pub struct Stamped {
    pub tsa: String,
    #[serde(serialize_with = "stamp_result")]
    pub result: Result<crate::tsp::Stamp, crate::tsp::TspError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// `{"Ok": stamp}` or `{"Err": "why"}`, as the JSON output has always shown an outcome.
fn stamp_result<S: serde::Serializer>(
    r: &Result<crate::tsp::Stamp, crate::tsp::TspError>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match r {
        Ok(v) => s.serialize_newtype_variant("Result", 0, "Ok", v),
        Err(e) => s.serialize_newtype_variant("Result", 1, "Err", &e.to_string()),
    }
}

/// A file name for an authority's token: its host and port, then a short hash of the whole
/// URL so two paths on one host do not collide.
pub fn token_file_name(url: &str) -> String {
    let host: String = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{host}-{}.tsr", &sha256_hex(url.as_bytes())[..12])
}

/// Requests, checks and stores RFC 3161 tokens over `data` from each authority; returns each
/// authority's outcome. A token is written only after it verified (nonce included).
pub fn stamp_all(
    data: &[u8],
    urls: &[String],
    roots: &crate::tsp::Roots,
    client: &crate::tsp::Client,
    out_dir: &Path,
) -> Result<Vec<Stamped>, ReleaseError> {
    let mut out = Vec::new();
    for url in urls {
        let req = crate::tsp::request(data).map_err(|e| ReleaseError::Refused(e.to_string()))?;
        let result = client.post(url, &req.der).and_then(|resp| {
            crate::tsp::verify_response(&resp, data, Some(&req.nonce), roots).map(|s| (s, resp))
        });
        match result {
            Ok((stamp, resp)) => {
                std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
                let f = out_dir.join(token_file_name(url));
                write(&f, &resp)?;
                out.push(Stamped {
                    tsa: url.clone(),
                    result: Ok(stamp),
                    file: Some(f.display().to_string()),
                });
            }
            Err(e) => out.push(Stamped {
                tsa: url.clone(),
                result: Err(e),
                file: None,
            }),
        }
    }
    Ok(out)
}

/// The time layer: every `.tsr` in `dir` verified over `data`. Returns (valid stamps,
/// problems by file).
pub fn check_tokens(
    dir: &Path,
    data: &[u8],
    roots: &crate::tsp::Roots,
) -> Result<(Vec<crate::tsp::Stamp>, Vec<String>), ReleaseError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "tsr"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(dir)(e)),
    };
    files.sort();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).map_err(io(&f))?;
        match crate::tsp::verify_response(&bytes, data, None, roots) {
            Ok(s) => ok.push(s),
            Err(e) => bad.push(format!("{}: {e}", f.display())),
        }
    }
    Ok((ok, bad))
}

pub use crate::approval::effective_revocations;

/// Why a seal does not make a release authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("{name}.seal.json: not a seal: {reason}")]
    NotASeal { name: String, reason: String },
    #[error("{name}.seal.json seals {sealed:?}, not this release")]
    OtherRelease { name: String, sealed: String },
    #[error("{name}.seal.json is for another manifest (the manifest was edited or replaced)")]
    OtherManifest { name: String },
    #[error("{name}.seal.json: {source}")]
    Group {
        name: String,
        #[source]
        source: crate::governance::model::GroupError,
    },
    #[error("the sealed release group is not the one root v{root_version} pins")]
    GroupNotPinned { root_version: u64 },
    #[error("root v{root_version} (named by the seal) is not part of the verified root chain")]
    RootNotInChain { root_version: u64 },
    #[error("seal envelope: {reason}")]
    Envelope { reason: String },
    #[error("seal statement: {reason}")]
    Statement { reason: String },
    #[error("the sealed signatures are for another release, manifest or group")]
    SignedOther,
    #[error("manifest: {reason}")]
    Manifest { reason: String },
    #[error("the signed archive digest or Merkle root differs from the manifest")]
    DigestDiffers,
    #[error(
        "release group {group:?} has {} of {threshold} valid signatures (signed: {}){}",
        signed.len(),
        if signed.is_empty() { "nobody".to_owned() } else { signed.join(", ") },
        if notes.is_empty() { String::new() } else { format!("; {}", notes.join("; ")) }
    )]
    Threshold {
        group: String,
        signed: Vec<String>,
        threshold: usize,
        notes: Vec<String>,
    },
}

/// The authenticity layer's verdict over a seal.
pub fn check_seal(
    name: &str,
    manifest: &[u8],
    seal_bytes: &[u8],
    rt: &ReleaseTrust,
    proven: Option<i64>,
) -> Result<String, SealError> {
    let seal: Seal = crate::json::from_slice(seal_bytes).map_err(|e| SealError::NotASeal {
        name: name.to_owned(),
        reason: e.to_string(),
    })?;
    if seal.kind != "treaty-release-seal" || seal.name != name {
        return Err(SealError::OtherRelease {
            name: name.to_owned(),
            sealed: seal.name,
        });
    }
    if seal.manifest.sha256 != sha256_hex(manifest) || seal.manifest.blake3 != blake3_hex(manifest)
    {
        return Err(SealError::OtherManifest {
            name: name.to_owned(),
        });
    }
    let group = Group::validate(&seal.group_name, &seal.group).map_err(|e| SealError::Group {
        name: name.to_owned(),
        source: e,
    })?;
    match rt.pins.get(&seal.root_version) {
        Some(pin) if *pin == group.group_id => {}
        Some(_) => {
            return Err(SealError::GroupNotPinned {
                root_version: seal.root_version,
            })
        }
        None => {
            return Err(SealError::RootNotInChain {
                root_version: seal.root_version,
            })
        }
    }
    let env_bytes = serde_json::to_vec(&seal.envelope).map_err(|e| SealError::Envelope {
        reason: e.to_string(),
    })?;
    let env = Envelope::parse(&env_bytes).map_err(|e| SealError::Envelope {
        reason: e.to_string(),
    })?;
    let st: ReleaseStatement =
        crate::json::from_slice(&env.payload).map_err(|e| SealError::Statement {
            reason: e.to_string(),
        })?;
    let want_subject = format!("{name}.manifest.json");
    if st.type_ != STATEMENT_TYPE
        || st.predicate_type != RELEASE_PREDICATE
        || st.predicate.release != name
        || st.subject.len() != 1
        || st.subject[0].name != want_subject
        || st.subject[0].digest.get("sha256") != Some(&sha256_hex(manifest))
        || st.predicate.group.group_id != group.group_id
        || st.predicate.root_version != seal.root_version
    {
        return Err(SealError::SignedOther);
    }
    let m: serde_json::Value =
        crate::json::parse_value(manifest).map_err(|e| SealError::Manifest {
            reason: e.to_string(),
        })?;
    if m["archive"]["sha256"].as_str() != Some(st.predicate.archive_sha256.as_str())
        || m["merkle"]["root"].as_str() != Some(st.predicate.merkle_root.as_str())
    {
        return Err(SealError::DigestDiffers);
    }
    let revoked = effective_revocations(&rt.revoked, proven);
    let (tallies, findings) = crate::verify::tally(
        &env,
        &want_subject,
        &format!("{name}.seal.json"),
        &[&group],
        &revoked,
        true,
    );
    let Some(t) = tallies.first() else {
        return Err(SealError::SignedOther);
    };
    if !t.met {
        return Err(SealError::Threshold {
            group: t.name.clone(),
            signed: t.signed.clone(),
            threshold: t.threshold,
            notes: findings.iter().map(|f| f.message.clone()).collect(),
        });
    }
    Ok(format!(
        "sealed by {} of {} of release group {:?} ({}), root v{}",
        t.signed.len(),
        t.threshold,
        t.name,
        t.signed.join(", "),
        seal.root_version
    ))
}
