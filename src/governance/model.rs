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
    /// Standard base64 of the 32-byte Ed25519 public key.
    pub ed25519: String,
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
    pub ed25519: PublicKey,
    pub ml_dsa_65: Option<PublicKey>,
    /// Key ids of `keys()`, in the same order, computed once: verification looks them up for
    /// every file, and an ML-DSA key id hashes 1952 bytes.
    key_ids: Vec<String>,
}

impl Member {
    pub fn new(id: String, ed25519: PublicKey, ml_dsa_65: Option<PublicKey>) -> Self {
        let key_ids = std::iter::once(&ed25519)
            .chain(ml_dsa_65.iter())
            .map(PublicKey::key_id)
            .collect();
        Self {
            id,
            ed25519,
            ml_dsa_65,
            key_ids,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        std::iter::once(&self.ed25519).chain(self.ml_dsa_65.iter())
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
/// "treaty/group-id/v1" 0x00
/// u64be(len(name)) name
/// u64be(threshold)
/// u64be(number of members)
/// for each member, sorted by id (bytewise):
///   u64be(len(id)) id
///   u64be(len(ed25519)) ed25519            raw public key bytes
///   u64be(len(ml_dsa_65)) ml_dsa_65        raw bytes, or length 0 when absent
///   u64be(len(openpgp)) openpgp            UTF-8 armour text, or length 0 when absent
/// ```
/// Every field is length-prefixed, so no two different groups share an encoding.
pub fn group_id(name: &str, threshold: u64, members: &[MemberEntry]) -> Result<String, GroupError> {
    let mut sorted: Vec<&MemberEntry> = members.iter().collect();
    sorted.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
    let mut enc = b"treaty/group-id/v1\0".to_vec();
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
        let ed = unb64(&m.ed25519).map_err(|_| not_base64("ed25519"))?;
        let ml = match &m.ml_dsa_65 {
            Some(s) => unb64(s).map_err(|_| not_base64("ml_dsa_65"))?,
            None => Vec::new(),
        };
        for part in [
            m.id.as_bytes(),
            &ed,
            &ml,
            m.openpgp.as_deref().unwrap_or("").as_bytes(),
        ] {
            enc.extend_from_slice(&(part.len() as u64).to_be_bytes());
            enc.extend_from_slice(part);
        }
    }
    Ok(format!("blake3:{}", blake3::hash(&enc).to_hex()))
}

impl MemberEntry {
    /// The entry publishing `k`'s public keys under its member id.
    pub fn for_key(k: &crate::crypto::SigningKey) -> MemberEntry {
        MemberEntry {
            id: k.member_id.clone(),
            ed25519: crate::crypto::b64(&k.ed25519_public().bytes()),
            ml_dsa_65: k.mldsa_public().map(|p| crate::crypto::b64(&p.bytes())),
            openpgp: None,
        }
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
            let ed = unb64(&m.ed25519)
                .map_err(|_| bad("ed25519 is not standard base64".into()))
                .and_then(|b| PublicKey::ed25519(&b).map_err(|e| bad(e.to_string())))?;
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

    /// The member whose Ed25519 key is `ed`, if any.
    pub fn member_with_key(&self, ed: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| &m.ed25519 == ed)
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
            ed25519: b64(&k.ed25519_public().bytes()),
            ml_dsa_65: k.mldsa_public().map(|p| b64(&p.bytes())),
            openpgp: None,
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
