//! Producing approvals: adding one member's signatures to a file's `.sig` envelope.
//!
//! Owns the signer's side of the protocol: which statement to sign for a path (the same one a
//! verifier recomputes), merging with existing signatures, dropping stale ones. It reads the
//! trust files from the tree it is given (the signer's checkout, or a copy carried to an
//! air-gapped machine) and writes nothing itself; the CLI writes the bytes it returns.

use std::collections::HashMap;

use crate::crypto::SigningKey;
use crate::dsse::{self, Envelope};
use crate::governance::model::{Group, ROOT_GROUP};
use crate::governance::schema;
use crate::governance::FileKind;
use crate::path::RepoPath;
use crate::source::Tree;
use crate::statement::{GroupRef, Statement};
use crate::trust::{self, Anchor, ROOT_PATH};

/// Why signing was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("{0}")]
    Key(#[from] crate::crypto::KeyError),
    #[error("{path}: not below a governed folder (keys/, treaties/, policies/, gates/, schemas/)")]
    NotGoverned { path: String },
    #[error("{path}: group files are approved by the root's pin, not by signatures; sign keys/root.json after updating the pin")]
    GroupFile { path: String },
    #[error("{path}: cannot be signed: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{path}: no delegation in keys/root.json covers this path")]
    Uncovered { path: String },
    #[error("{path}: the trust files cannot be read: {reason}")]
    Trust { path: String, reason: String },
    #[error("{path}: key of member {member:?} is not a member of any required group ({groups})")]
    NotAMember {
        path: String,
        member: String,
        groups: String,
    },
    #[error("{path}: key {keyid} is revoked; it cannot approve anything")]
    Revoked { path: String, keyid: String },
    /// The existing `.sig` cannot be read: signing would overwrite the signatures it holds.
    #[error("{path}.sig is not a readable approval envelope ({reason}); refusing to overwrite the signatures it may hold{hint}")]
    ExistingUnreadable {
        path: String,
        reason: String,
        /// What to do, when the cause is recognisable (a merge conflict).
        hint: String,
    },
    #[error("{path}: the approval would expire at {expires}, which is not in the future; pass --expires with a later time")]
    ExpiresPast { path: String, expires: String },
    /// A new expiry makes a new statement: every other member's signature (valid today, for the
    /// same bytes) would be dropped and the file unapproved until the threshold signs again.
    #[error("{path}: changing the approval's expiry from {from} to {to} would drop {entries} valid signature entr{plural} of other members (the file would be unapproved until they sign again); pass --restart to start the new approval anyway, or sign without --expires to join the current one", plural = if *entries == 1 { "y" } else { "ies" })]
    ExpiryWouldDrop {
        path: String,
        from: String,
        to: String,
        entries: usize,
    },
    #[error("{path}: {why}")]
    NotARegularFile { path: String, why: String },
}

/// Why an existing envelope cannot be merged into, and what to do about it.
fn unreadable(path: &str, bytes: &[u8], reason: String) -> SignError {
    let conflicted = bytes
        .split(|&b| b == b'\n')
        .any(|l| l.starts_with(b"<<<<<<< ") || l.starts_with(b">>>>>>> ") || l == b"=======");
    let hint = if conflicted {
        format!(
            ": it holds an unresolved git merge conflict — two branches signed {path} at once. \
             `git checkout --ours {path}.sig` (or --theirs), commit, then ask the other signers to sign again; \
             `treaty hooks install` sets up the merge driver that unions signatures so this does not recur"
        )
    } else {
        format!(": restore it from git (`git checkout -- {path}.sig`), or move it away to start a new envelope")
    };
    SignError::ExistingUnreadable {
        path: path.to_owned(),
        reason,
        hint,
    }
}

/// What signing did.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The new envelope, ready to write to `<path>.sig`.
    pub envelope: Vec<u8>,
    /// Signature entries kept from the existing envelope (other members').
    pub kept: usize,
    /// Entries dropped because the content, version or groups changed since they were made.
    pub dropped_stale: usize,
    /// This member had already signed exactly this statement; nothing changed.
    pub already_signed: bool,
    /// The required groups, and for each whether this key is a member.
    pub groups: Vec<(String, bool)>,
    /// The statement path (for kept root versions, `keys/root.json`).
    pub statement_path: String,
}

/// The statement path and required groups for `path` under the trust in `tree`.
pub fn requirements(tree: &Tree, path: &RepoPath) -> Result<(String, u64, Vec<Group>), SignError> {
    let p = path.as_str().to_owned();
    let kind = FileKind::of(path);
    let terr = |reason: String| SignError::Trust {
        path: p.clone(),
        reason,
    };
    let (trust, findings) = trust::load(tree, &Anchor::Repository, crate::time::now());
    let Some(trust) = trust else {
        let why = findings
            .first()
            .map_or_else(|| "no root".to_owned(), ToString::to_string);
        return Err(terr(why));
    };
    match kind {
        FileKind::Group => Err(SignError::GroupFile { path: p }),
        FileKind::Root | FileKind::RootVersion(_) => {
            let n = match kind {
                FileKind::RootVersion(n) => n,
                _ => trust.root.version,
            };
            let own = if n == trust.root.version {
                trust.root_group.clone()
            } else {
                root_group_at(tree, n, &p)?
            };
            let mut groups = Vec::new();
            if n > 1 {
                let prev = root_group_at(tree, n - 1, &p)?;
                if prev.group_id != own.group_id {
                    groups.push(prev);
                }
            }
            groups.push(own);
            Ok((ROOT_PATH.to_owned(), n, groups))
        }
        _ => {
            let d = trust
                .delegation_for(&p)
                .ok_or(SignError::Uncovered { path: p.clone() })?;
            if let Some(problem) = &d.problem {
                return Err(terr(problem.clone()));
            }
            let groups = d
                .groups
                .iter()
                .map(|n| {
                    trust.groups.get(n).cloned().ok_or_else(|| {
                        terr(
                            trust
                                .broken_groups
                                .get(n)
                                .cloned()
                                .unwrap_or_else(|| format!("group {n:?} is not pinned")),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((p.clone(), 0, groups))
        }
    }
}

/// The root group of kept root version `n`, for signing `signed` (named in the error).
fn root_group_at(tree: &Tree, n: u64, signed: &str) -> Result<Group, SignError> {
    let path = format!("keys/roots/{n}.json");
    let trust = |reason: String| SignError::Trust {
        path: signed.to_owned(),
        reason,
    };
    let bytes = tree
        .file(&path)
        .ok_or_else(|| trust(format!("{path} is absent")))?;
    let r: crate::governance::model::Root =
        crate::json::from_slice(&bytes).map_err(|e| trust(format!("{path}: {e}")))?;
    Group::validate(ROOT_GROUP, &r.root_group).map_err(|e| trust(format!("{path}: {e}")))
}

/// Signs `path` (whose content is `bytes`) with `key`, merging into `existing` (the current
/// `.sig`, if any). `expires` sets the approval's expiry; `None` keeps an existing envelope's.
pub fn sign(
    tree: &Tree,
    path: &RepoPath,
    bytes: &[u8],
    existing: Option<&[u8]>,
    key: &SigningKey,
    expires: Option<String>,
) -> Result<Signed, SignError> {
    sign_with(tree, path, bytes, existing, key, expires, false)
}

/// [`sign`], where `restart` lets a new `expires` drop other members' still-valid signatures
/// (`treaty sign --expires … --restart`): without it that is refused, never done in silence.
pub fn sign_with(
    tree: &Tree,
    path: &RepoPath,
    bytes: &[u8],
    existing: Option<&[u8]>,
    key: &SigningKey,
    expires: Option<String>,
    restart: bool,
) -> Result<Signed, SignError> {
    let p = path.as_str().to_owned();
    if !crate::governance::is_governed(path) {
        return Err(SignError::NotGoverned { path: p });
    }
    let kind = FileKind::of(path);
    if kind == FileKind::Unsupported {
        return Err(SignError::Invalid {
            path: p,
            reason: "treaty cannot read a version from this kind of file".into(),
        });
    }
    let invalid = |reason: String| SignError::Invalid {
        path: p.clone(),
        reason,
    };
    let value = schema::parse(kind, bytes).map_err(|i| invalid(i.to_string()))?;
    let (_, version) = schema::header(&value).map_err(|i| invalid(i.to_string()))?;
    // The schema from the signer's tree; this build's own copy if the tree has none yet.
    if let Some(sp) = kind.schema_path() {
        let compiled = schema::compile_at(sp, tree.file(sp).as_deref(), true)
            .map_err(|e| invalid(e.to_string()))?;
        let text = (kind != FileKind::Gates).then_some(bytes);
        let issues = compiled.validate(&value, text);
        if !issues.is_empty() {
            let all: Vec<String> = issues.iter().map(ToString::to_string).collect();
            // One line: the CLI shows a refusal on one line, escaping any line break in it.
            return Err(invalid(format!(
                "fails its schema, refusing to sign: {}",
                all.join("; ")
            )));
        }
    } else if kind == FileKind::Schema {
        schema::compile(&value).map_err(|e| invalid(e.to_string()))?;
    }

    let (stmt_path, root_version, groups) = requirements(tree, path)?;
    let version = if stmt_path == ROOT_PATH {
        root_version.max(version)
    } else {
        version
    };
    let ed = key.classical_public();
    let membership: Vec<(String, bool)> = groups
        .iter()
        .map(|g| {
            let is = g
                .members
                .iter()
                .any(|m| m.classical == ed && m.ml_dsa_65 == key.mldsa_public());
            (g.name.clone(), is)
        })
        .collect();
    if !membership.iter().any(|(_, is)| *is) {
        return Err(SignError::NotAMember {
            path: p,
            member: key.member_id.clone(),
            groups: groups
                .iter()
                .map(|g| g.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let revoked: HashMap<String, ()> = tree
        .file(ROOT_PATH)
        .and_then(|b| crate::json::from_slice::<crate::governance::model::Root>(&b).ok())
        .map(|r| r.revoked.into_iter().map(|x| (x.keyid, ())).collect())
        .unwrap_or_default();
    for k in std::iter::once(ed.clone()).chain(key.mldsa_public()) {
        if revoked.contains_key(&k.key_id()) {
            return Err(SignError::Revoked {
                path: p,
                keyid: k.key_id(),
            });
        }
    }
    let refs: Vec<GroupRef> = groups
        .iter()
        .map(|g| GroupRef {
            name: if stmt_path == ROOT_PATH {
                ROOT_GROUP.into()
            } else {
                g.name.clone()
            },
            group_id: g.group_id.clone(),
        })
        .collect();

    // An existing envelope is merged into, never silently replaced: an unreadable one (a merge
    // conflict, a truncated write) is refused, since dropping it would drop every signature in it.
    let old = match existing {
        None => None,
        Some(b) => Some(Envelope::parse(b).map_err(|e| unreadable(&p, b, e.to_string()))?),
    };
    let old_stmt = match &old {
        None => None,
        Some(e) => Some(Statement::parse(&e.payload).map_err(|err| {
            unreadable(
                &p,
                existing.unwrap_or_default(),
                format!("its payload is not an approval statement: {err}"),
            )
        })?),
    };
    let old_expires = old_stmt.as_ref().and_then(|s| s.predicate.expires.clone());
    // One spelling per instant (`…+01:00` and `…Z` for the same time make one statement).
    let expires = match expires {
        Some(e) => Some(
            crate::time::parse(&e)
                .map(crate::time::format)
                .map_err(|err| invalid(format!("expires {e:?}: {err}")))?,
        ),
        None => old_expires.clone(),
    };
    // A signature on an approval that has already expired counts for nothing: refuse it rather
    // than spend a member's review on it (and drop the others' signatures with the change).
    if let Some(e) = &expires {
        match crate::time::parse(e) {
            Ok(t) if t > crate::time::now() => {}
            _ => {
                return Err(SignError::ExpiresPast {
                    path: p,
                    expires: e.clone(),
                })
            }
        }
    }
    let my_ids: Vec<String> = std::iter::once(ed)
        .chain(key.mldsa_public())
        .map(|k| k.key_id())
        .collect();
    let stmt = Statement::new(&stmt_path, bytes, version, refs.clone(), expires.clone());
    let payload = stmt.to_bytes();
    // The existing envelope approves these very bytes under another expiry: re-signing with the
    // new one would drop the others' valid signatures. Refused unless asked for.
    if let (Some(old), false) = (&old, restart) {
        let same_but_expiry =
            Statement::new(&stmt_path, bytes, version, refs, old_expires.clone()).to_bytes();
        let old_live = old_expires
            .as_deref()
            .is_none_or(|e| crate::time::parse(e).is_ok_and(|t| t > crate::time::now()));
        if old.payload != payload && old.payload == same_but_expiry && old_live {
            let entries = old
                .signatures
                .iter()
                .filter(|s| !my_ids.contains(&s.keyid))
                .count();
            if entries > 0 {
                return Err(SignError::ExpiryWouldDrop {
                    path: p,
                    from: old_expires.unwrap_or_else(|| "none".into()),
                    to: expires.unwrap_or_else(|| "none".into()),
                    entries,
                });
            }
        }
    }

    let mut kept = Vec::new();
    let mut dropped_stale = 0;
    let mut already_signed = false;
    if let Some(old) = old {
        if old.payload == payload {
            let msg = old.signed_bytes();
            let mine_valid = std::iter::once(key.classical_public())
                .chain(key.mldsa_public())
                .all(|pk| {
                    let kid = pk.key_id();
                    old.signatures
                        .iter()
                        .any(|s| s.keyid == kid && pk.verify(&msg, &s.sig))
                });
            already_signed = mine_valid;
            kept = old
                .signatures
                .into_iter()
                .filter(|s| !my_ids.contains(&s.keyid) || mine_valid)
                .collect();
        } else {
            dropped_stale = old.signatures.len();
        }
    }
    let mut signatures = kept.clone();
    if !already_signed {
        signatures.extend(dsse::sign(key, dsse::PAYLOAD_TYPE, &payload)?);
    }
    let kept_others = kept.iter().filter(|s| !my_ids.contains(&s.keyid)).count();
    let env = Envelope {
        payload,
        signatures,
    };
    Ok(Signed {
        envelope: env.to_bytes(),
        kept: kept_others,
        dropped_stale,
        already_signed,
        groups: membership,
        statement_path: stmt_path,
    })
}

/// Why two approval envelopes (both sides of a merge) cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{side} is not a readable approval envelope: {reason}")]
    Unreadable { side: &'static str, reason: String },
    #[error("the two sides signed different statements (the document's bytes, version, expiry or groups differ): settle the document first, then its signers sign it again")]
    DifferentStatements,
}

/// The result of [`merge_envelopes`].
#[derive(Debug)]
pub struct Merged {
    /// The merged envelope's bytes (deterministic: [`Envelope::to_bytes`]).
    pub envelope: Vec<u8>,
    /// Valid signature entries in the result.
    pub signatures: usize,
    /// Entries dropped: unknown key id, or a signature that does not verify.
    pub dropped: usize,
}

/// Unions the valid signatures of two envelopes over the *same* statement — what git's merge
/// driver for `*.sig` does when two members signed one file on two branches (docs/operations.md
/// § Concurrent signing). `key_of` maps a key id to a member key the repository knows; an entry
/// whose key is unknown or whose signature does not verify over the statement is dropped, so a
/// merge can never smuggle in a signature the verifier would not count. Different statements
/// are a real conflict: which one is right depends on the document, which this cannot see.
pub fn merge_envelopes(
    ours: &[u8],
    theirs: &[u8],
    key_of: &dyn Fn(&str) -> Option<crate::crypto::PublicKey>,
) -> Result<Merged, MergeError> {
    let read = |side: &'static str, b: &[u8]| {
        let e = Envelope::parse(b).map_err(|e| MergeError::Unreadable {
            side,
            reason: e.to_string(),
        })?;
        Statement::parse(&e.payload).map_err(|e| MergeError::Unreadable {
            side,
            reason: format!("its payload is not an approval statement: {e}"),
        })?;
        Ok::<_, MergeError>(e)
    };
    let (a, b) = (read("ours", ours)?, read("theirs", theirs)?);
    if a.payload != b.payload {
        return Err(MergeError::DifferentStatements);
    }
    let msg = a.signed_bytes();
    let mut out: Vec<dsse::Signature> = Vec::new();
    let mut dropped = 0;
    for s in a.signatures.iter().chain(b.signatures.iter()) {
        if out.iter().any(|o| o.keyid == s.keyid) {
            // One entry per key: the other side's copy of the same member's signature (ML-DSA
            // signatures are randomised, so the bytes may differ) adds nothing.
            continue;
        }
        match key_of(&s.keyid) {
            Some(k) if k.verify(&msg, &s.sig) => out.push(s.clone()),
            _ => dropped += 1,
        }
    }
    let env = Envelope {
        payload: a.payload,
        signatures: out,
    };
    Ok(Merged {
        envelope: env.to_bytes(),
        signatures: env.signatures.len(),
        dropped,
    })
}

pub use crate::statement::approve;
