//! Typed trust files: the root (`keys/root.json`) and signer groups (`keys/groups/*.json`).
//!
//! Owns their strict serde shapes, the canonical `group_id` encoding and the checks a group
//! must pass on its own (threshold, duplicates, key validity). Whether a group is *trusted*
//! (pinned by a verified root) is [`crate::trust`]'s question.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

use crate::crypto::{unb64, PublicKey};

/// The reserved name of the root group in delegations and roles.
pub const ROOT_GROUP: &str = "root";

/// `keys/root.json` (docs/model.md § Root).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    pub spec_version: String,
    pub version: u64,
    pub expires: String,
    /// The root group: it approves root versions and whatever delegations give it.
    pub root_group: GroupBody,
    /// Trusted signer groups, pinned by name → `group_id`.
    pub groups: BTreeMap<String, String>,
    /// Evaluated in order; the first delegation with a matching pattern decides.
    pub delegations: Vec<Delegation>,
    /// Which group fills each role used by later capabilities.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    #[serde(default)]
    pub revoked: Vec<Revocation>,
}

/// A role the root assigns to one group (docs/model.md § Root `roles`): who seals releases,
/// signs the state snapshot and heartbeat, signs gate verdicts, and signs audit checkpoints.
/// One definition: every reader of `roles` names its role through this enum, so a mistyped
/// role is a compile error, not a silently absent group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Release,
    Snapshot,
    Verdict,
    Log,
    /// Optional: the group whose members may place orders (docs/law.md § Who signs what).
    Orders,
    /// Optional: the group whose members attest requesters' reputation.
    Reputation,
    /// Optional: the decision points' own keys, which sign their provenance receipts'
    /// checkpoints (docs/law.md § Receipts). Never the group of `snapshot`, `verdict` or
    /// `log`: one compromised agent host must not sign the fleet's state (freezing it), a
    /// gate's verdict or the governance audit log.
    Agent,
}

impl Role {
    /// Every role a root names.
    pub const ALL: [Role; 7] = [
        Role::Release,
        Role::Snapshot,
        Role::Verdict,
        Role::Log,
        Role::Orders,
        Role::Reputation,
        Role::Agent,
    ];
    /// The roles every root must fill; the runtime roles are optional (a root without them
    /// lets nobody sign orders or attestations).
    pub const REQUIRED: [Role; 4] = [Role::Release, Role::Snapshot, Role::Verdict, Role::Log];

    /// The key in the root's `roles` object.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Release => "release",
            Role::Snapshot => "snapshot",
            Role::Verdict => "verdict",
            Role::Log => "log",
            Role::Orders => "orders",
            Role::Reputation => "reputation",
            Role::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Root {
    /// The group that fills `role`, if the root names one.
    pub fn role_group(&self, role: Role) -> Option<&str> {
        self.roles.get(role.as_str()).map(String::as_str)
    }
}

/// The roles a root must fill, by name.
pub const ROLES: [&str; 4] = [
    Role::Release.as_str(),
    Role::Snapshot.as_str(),
    Role::Verdict.as_str(),
    Role::Log.as_str(),
];

/// Every role filled by `group`.
pub fn all_roles(group: &str) -> BTreeMap<String, String> {
    ROLES
        .iter()
        .map(|r| (r.to_string(), group.to_owned()))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    pub name: String,
    pub paths: Vec<String>,
    /// Every one of these groups must reach its own threshold.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub keyid: String,
    pub reason: RevocationReason,
    pub time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationReason {
    Compromised,
    Retired,
}

/// The members and threshold of a group, as written in a group file or inline in the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    pub threshold: u64,
    pub members: Vec<MemberEntry>,
    pub group_id: String,
}

/// A member entry as written on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    pub id: String,
    /// Standard base64 of the 32-byte Ed25519 public key. Exactly one of `ed25519` and `p256`
    /// is present: it is the member's classical key (docs/spec.md § 1.1).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub ed25519: Option<String>,
    /// Standard base64 of the 33-byte SEC1-compressed ECDSA P-256 public key of a member whose
    /// classical key lives in a TPM 2.0.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub p256: Option<String>,
    /// Standard base64 of the 1952-byte ML-DSA-65 public key; when present the member is
    /// hybrid and counts only when both signatures verify.
    /// Present means a string: `null` is refused, not read as "Ed25519 only" (docs/spec.md
    /// § 1.1), so no verifier counts a member as classical that another counts as hybrid.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub ml_dsa_65: Option<String>,
    /// ASCII-armoured OpenPGP public key, for release signing.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub openpgp: Option<String>,
}

/// `keys/groups/<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    pub spec_version: String,
    pub name: String,
    pub threshold: u64,
    pub members: Vec<MemberEntry>,
    pub group_id: String,
}

/// A validated member with parsed keys.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    /// The classical key: Ed25519, or ECDSA P-256 for a TPM member.
    pub classical: PublicKey,
    pub ml_dsa_65: Option<PublicKey>,
    /// Key ids of `keys()`, in the same order, computed once: verification looks them up for
    /// every file, and an ML-DSA key id hashes 1952 bytes.
    key_ids: Vec<String>,
}

impl Member {
    pub fn new(id: String, classical: PublicKey, ml_dsa_65: Option<PublicKey>) -> Self {
        let key_ids = std::iter::once(&classical)
            .chain(ml_dsa_65.iter())
            .map(PublicKey::key_id)
            .collect();
        Self {
            id,
            classical,
            ml_dsa_65,
            key_ids,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        std::iter::once(&self.classical).chain(self.ml_dsa_65.iter())
    }

    /// Each key with its key id.
    pub fn keys_with_ids(&self) -> impl Iterator<Item = (&PublicKey, &str)> {
        self.keys().zip(self.key_ids.iter().map(String::as_str))
    }
}

/// A validated group: threshold sane, no duplicates, keys valid, `group_id` matches.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub threshold: usize,
    pub members: Vec<Member>,
    pub group_id: String,
}

/// Why a group is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    #[error("group {group:?} has no members")]
    Empty { group: String },
    #[error("group {group:?} has threshold 0; at least one signature must be required")]
    ZeroThreshold { group: String },
    #[error("group {group:?} has threshold {threshold} but only {members} members: it could never approve anything")]
    ThresholdTooHigh {
        group: String,
        threshold: u64,
        members: usize,
    },
    #[error("group {group:?} lists member id {id:?} twice")]
    DuplicateMember { group: String, id: String },
    #[error(
        "group {group:?}: member {id:?} has a key that member {other:?} also has (key id {keyid})"
    )]
    DuplicateKey {
        group: String,
        id: String,
        other: String,
        keyid: String,
    },
    #[error("group {group:?}: member {id:?}: {reason}")]
    BadKey {
        group: String,
        id: String,
        reason: String,
    },
    #[error("group {group:?}: member id {id:?} must match [a-z0-9][a-z0-9._-]{{0,63}}")]
    BadMemberId { group: String, id: String },
    #[error(
        "group {group:?}: group_id is {written} but its members and threshold hash to {computed}"
    )]
    GroupIdMismatch {
        group: String,
        written: String,
        computed: String,
    },
}

fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

/// A group name: same alphabet as member ids.
pub fn valid_group_name(name: &str) -> bool {
    valid_id(name)
}

/// `group_id` = `"blake3:"` + hex BLAKE3 of this encoding (docs/spec § group_id):
///
/// ```text
/// "treaty/group-id/v1" 0x00        (v2 when any member's classical key is p256)
/// u64be(len(name)) name
/// u64be(threshold)
/// u64be(number of members)
/// for each member, sorted by id (bytewise):
///   u64be(len(id)) id
///   [v2 only: u64be(len(alg)) alg          "ed25519" or "ecdsa-p256"]
///   u64be(len(ed25519)) ed25519            raw public key bytes (v2: the classical key's)
///   u64be(len(ml_dsa_65)) ml_dsa_65        raw bytes, or length 0 when absent
///   u64be(len(openpgp)) openpgp            UTF-8 armour text, or length 0 when absent
/// ```
/// Every field is length-prefixed, so no two different groups share an encoding. Groups of
/// Ed25519 members keep the v1 encoding (their ids never change); v2 names each member's
/// classical algorithm, so a P-256 key can never hash like an Ed25519 key of the same bytes.
pub fn group_id(name: &str, threshold: u64, members: &[MemberEntry]) -> Result<String, GroupError> {
    let mut sorted: Vec<&MemberEntry> = members.iter().collect();
    sorted.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
    let v2 = members.iter().any(|m| m.p256.is_some());
    let mut enc = if v2 {
        b"treaty/group-id/v2\0".to_vec()
    } else {
        b"treaty/group-id/v1\0".to_vec()
    };
    enc.extend_from_slice(&(name.len() as u64).to_be_bytes());
    enc.extend_from_slice(name.as_bytes());
    enc.extend_from_slice(&threshold.to_be_bytes());
    enc.extend_from_slice(&(sorted.len() as u64).to_be_bytes());
    for m in sorted {
        let not_base64 = |field: &str| GroupError::BadKey {
            group: name.to_owned(),
            id: m.id.clone(),
            reason: format!("{field} is not base64"),
        };
        let (alg, classical) = m.classical_field().map_err(|reason| GroupError::BadKey {
            group: name.to_owned(),
            id: m.id.clone(),
            reason,
        })?;
        let classical = unb64(classical).map_err(|_| not_base64(&alg.to_string()))?;
        let ml = match &m.ml_dsa_65 {
            Some(s) => unb64(s).map_err(|_| not_base64("ml_dsa_65"))?,
            None => Vec::new(),
        };
        let mut put = |part: &[u8]| {
            enc.extend_from_slice(&(part.len() as u64).to_be_bytes());
            enc.extend_from_slice(part);
        };
        put(m.id.as_bytes());
        if v2 {
            put(alg.to_string().as_bytes());
        }
        for part in [
            &classical,
            &ml,
            m.openpgp.as_deref().unwrap_or("").as_bytes(),
        ] {
            put(part);
        }
    }
    Ok(format!("blake3:{}", blake3::hash(&enc).to_hex()))
}

impl MemberEntry {
    /// The entry publishing `k`'s public keys under its member id.
    pub fn for_key(k: &crate::crypto::SigningKey) -> MemberEntry {
        let classical = k.classical_public();
        let b = Some(crate::crypto::b64(&classical.bytes()));
        let p256 = classical.algorithm() == crate::crypto::Algorithm::EcdsaP256;
        MemberEntry {
            id: k.member_id.clone(),
            ed25519: if p256 { None } else { b.clone() },
            p256: if p256 { b } else { None },
            ml_dsa_65: k.mldsa_public().map(|p| crate::crypto::b64(&p.bytes())),
            openpgp: None,
        }
    }

    /// The classical key's algorithm and its base64 text: exactly one of `ed25519` and `p256`.
    pub fn classical_field(&self) -> Result<(crate::crypto::Algorithm, &str), String> {
        use crate::crypto::Algorithm;
        match (&self.ed25519, &self.p256) {
            (Some(e), None) => Ok((Algorithm::Ed25519, e)),
            (None, Some(p)) => Ok((Algorithm::EcdsaP256, p)),
            (Some(_), Some(_)) => {
                Err("has both an ed25519 and a p256 key; a member has one classical key".into())
            }
            (None, None) => Err("has no classical key (ed25519 or p256)".into()),
        }
    }

    /// The classical key, parsed and vetted.
    pub fn classical_key(&self) -> Result<PublicKey, String> {
        let (alg, text) = self.classical_field()?;
        let bytes = unb64(text).map_err(|_| format!("{alg} is not standard base64"))?;
        PublicKey::classical(alg, &bytes).map_err(|e| e.to_string())
    }
}

impl GroupBody {
    /// A group body with its computed `group_id`.
    pub fn new(
        name: &str,
        threshold: u64,
        members: Vec<MemberEntry>,
    ) -> Result<GroupBody, GroupError> {
        let group_id = group_id(name, threshold, &members)?;
        Ok(GroupBody {
            threshold,
            members,
            group_id,
        })
    }
}

impl Group {
    /// Validates a group body; `name` is the group's name (`root` for the root group).
    pub fn validate(name: &str, body: &GroupBody) -> Result<Group, GroupError> {
        let g = || name.to_owned();
        if body.members.is_empty() {
            return Err(GroupError::Empty { group: g() });
        }
        if body.threshold == 0 {
            return Err(GroupError::ZeroThreshold { group: g() });
        }
        if body.threshold > body.members.len() as u64 {
            return Err(GroupError::ThresholdTooHigh {
                group: g(),
                threshold: body.threshold,
                members: body.members.len(),
            });
        }
        let mut ids = HashSet::new();
        let mut keys: BTreeMap<Vec<u8>, String> = BTreeMap::new();
        let mut members = Vec::with_capacity(body.members.len());
        for m in &body.members {
            if !valid_id(&m.id) {
                return Err(GroupError::BadMemberId {
                    group: g(),
                    id: m.id.clone(),
                });
            }
            if !ids.insert(m.id.clone()) {
                return Err(GroupError::DuplicateMember {
                    group: g(),
                    id: m.id.clone(),
                });
            }
            let bad = |reason: String| GroupError::BadKey {
                group: g(),
                id: m.id.clone(),
                reason,
            };
            let ed = m.classical_key().map_err(bad)?;
            let ml = match &m.ml_dsa_65 {
                None => None,
                Some(s) => Some(
                    unb64(s)
                        .map_err(|_| bad("ml_dsa_65 is not standard base64".into()))
                        .and_then(|b| PublicKey::mldsa65(&b).map_err(|e| bad(e.to_string())))?,
                ),
            };
            for k in std::iter::once(&ed).chain(ml.iter()) {
                if let Some(other) = keys.insert(k.bytes(), m.id.clone()) {
                    return Err(GroupError::DuplicateKey {
                        group: g(),
                        id: m.id.clone(),
                        other,
                        keyid: k.key_id(),
                    });
                }
            }
            members.push(Member::new(m.id.clone(), ed, ml));
        }
        let computed = group_id(name, body.threshold, &body.members)?;
        if computed != body.group_id {
            return Err(GroupError::GroupIdMismatch {
                group: g(),
                written: body.group_id.clone(),
                computed,
            });
        }
        Ok(Group {
            name: name.to_owned(),
            threshold: body.threshold as usize,
            members,
            group_id: computed,
        })
    }

    /// Validates a group file.
    pub fn from_file(f: &GroupFile) -> Result<Group, GroupError> {
        Group::validate(
            &f.name,
            &GroupBody {
                threshold: f.threshold,
                members: f.members.clone(),
                group_id: f.group_id.clone(),
            },
        )
    }

    /// The member whose classical key is `key`, if any.
    pub fn member_with_key(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| &m.classical == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{b64, SigningKey};

    fn entry(id: &str) -> MemberEntry {
        let k = SigningKey::generate(id).unwrap();
        MemberEntry {
            id: id.into(),
            ed25519: Some(b64(&k.classical_public().bytes())),
            p256: None,
            ml_dsa_65: k.mldsa_public().map(|p| b64(&p.bytes())),
            openpgp: None,
        }
    }

    /// Groups of Ed25519 members keep their v1 ids; a group with a P-256 member hashes with
    /// v2, which names each member's algorithm, so the same bytes under another algorithm
    /// never share an id. A member with both or neither classical key is refused.
    #[test]
    fn group_ids_are_versioned_only_for_groups_with_a_p256_member() {
        let a = entry("a");
        let v1 = group_id("g", 1, std::slice::from_ref(&a)).unwrap();
        let mut enc = b"treaty/group-id/v1\0".to_vec();
        let lp = |enc: &mut Vec<u8>, b: &[u8]| {
            enc.extend_from_slice(&(b.len() as u64).to_be_bytes());
            enc.extend_from_slice(b);
        };
        lp(&mut enc, b"g");
        enc.extend_from_slice(&1u64.to_be_bytes());
        enc.extend_from_slice(&1u64.to_be_bytes());
        lp(&mut enc, b"a");
        lp(&mut enc, &unb64(a.ed25519.as_ref().unwrap()).unwrap());
        lp(&mut enc, &unb64(a.ml_dsa_65.as_ref().unwrap()).unwrap());
        lp(&mut enc, b"");
        assert_eq!(
            v1,
            format!("blake3:{}", blake3::hash(&enc).to_hex()),
            "v1 unchanged"
        );
        let t = MemberEntry::for_key(&SigningKey::deterministic_p256("t", &[3; 32]).unwrap());
        assert!(t.ed25519.is_none() && t.p256.is_some());
        let v2 = group_id("g", 1, &[a.clone(), t.clone()]).unwrap();
        // The same key bytes labelled as the other algorithm hash differently.
        let mut relabelled = t.clone();
        relabelled.ed25519 = relabelled.p256.take();
        let both = group_id("g", 1, &[a.clone(), relabelled, entry("z")]).unwrap();
        assert_ne!(v2, both);
        let g = Group::validate("g", &body(2, vec![a.clone(), t.clone()])).unwrap();
        assert_eq!(
            g.members[1].classical.algorithm(),
            crate::crypto::Algorithm::EcdsaP256
        );
        for (what, m) in [
            (
                "both",
                MemberEntry {
                    ed25519: a.ed25519.clone(),
                    ..t.clone()
                },
            ),
            (
                "neither",
                MemberEntry {
                    p256: None,
                    ..t.clone()
                },
            ),
        ] {
            assert!(
                matches!(group_id("g", 1, &[m]), Err(GroupError::BadKey { .. })),
                "{what}"
            );
        }
    }

    fn body(threshold: u64, members: Vec<MemberEntry>) -> GroupBody {
        let group_id = group_id("g", threshold, &members).unwrap();
        GroupBody {
            threshold,
            members,
            group_id,
        }
    }

    #[test]
    fn an_honest_group_validates() {
        let g = Group::validate("g", &body(2, vec![entry("a"), entry("b"), entry("c")])).unwrap();
        assert_eq!(g.threshold, 2);
    }

    #[test]
    fn threshold_zero_above_n_and_empty_groups_are_refused() {
        assert!(matches!(
            Group::validate("g", &body(0, vec![entry("a")])),
            Err(GroupError::ZeroThreshold { .. })
        ));
        assert!(matches!(
            Group::validate("g", &body(2, vec![entry("a")])),
            Err(GroupError::ThresholdTooHigh { .. })
        ));
        assert!(matches!(
            Group::validate("g", &body(1, vec![])),
            Err(GroupError::Empty { .. })
        ));
    }

    #[test]
    fn duplicate_members_and_keys_are_refused() {
        let a = entry("a");
        let mut a2 = a.clone();
        a2.id = "a2".into();
        assert!(matches!(
            Group::validate("g", &body(1, vec![a.clone(), a2])),
            Err(GroupError::DuplicateKey { .. })
        ));
        let mut b = entry("b");
        b.id = "a".into();
        assert!(matches!(
            Group::validate("g", &body(1, vec![a, b])),
            Err(GroupError::DuplicateMember { .. })
        ));
    }

    #[test]
    fn group_id_mismatch_is_refused() {
        let mut b = body(1, vec![entry("a"), entry("b")]);
        b.threshold = 2;
        assert!(matches!(
            Group::validate("g", &b),
            Err(GroupError::GroupIdMismatch { .. })
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        #[test]
        fn group_id_is_invariant_under_member_order(seed in proptest::prelude::any::<u64>(), threshold in 1u64..4) {
            let mut members: Vec<MemberEntry> = (0..4).map(|i| entry(&format!("m{i}"))).collect();
            let id = group_id("g", threshold, &members).unwrap();
            // A deterministic shuffle from the seed.
            let n = members.len();
            for i in 0..n {
                let j = ((seed >> (i * 8)) as usize) % n;
                members.swap(i, j);
            }
            proptest::prop_assert_eq!(group_id("g", threshold, &members).unwrap(), id.clone());
            let body = GroupBody { threshold, members, group_id: id };
            proptest::prop_assert!(Group::validate("g", &body).is_ok());
        }
    }

    #[test]
    fn group_id_ignores_member_order_but_not_content() {
        let (a, b) = (entry("a"), entry("b"));
        let x = group_id("g", 1, &[a.clone(), b.clone()]).unwrap();
        assert_eq!(x, group_id("g", 1, &[b.clone(), a.clone()]).unwrap());
        assert_ne!(x, group_id("g", 2, &[a.clone(), b.clone()]).unwrap());
        assert_ne!(x, group_id("h", 1, &[a.clone(), b.clone()]).unwrap());
        let mut a_pgp = a.clone();
        a_pgp.openpgp = Some("k".into());
        assert_ne!(x, group_id("g", 1, &[a_pgp, b]).unwrap());
    }
}
