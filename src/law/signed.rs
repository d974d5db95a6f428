//! Who may sign the runtime messages, and checking that one did (docs/law.md § Who signs what).
//!
//! Owns the signer registry built from a verified, approved state — never from a message: orders
//! by members of the group the root names in its `orders` role, attestations by the `reputation`
//! role's group, ACKs and completions by the group pinned under the treaty's provider network
//! (`parties.provider.network`) — and the envelope check: the message kind's own `payloadType`,
//! exactly one signature (or, for a hybrid member, exactly its Ed25519 and ML-DSA-65 pair, both
//! required), the key id naming a registered key (no trial verification against every key), and
//! that key not revoked.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::crypto::PublicKey;
use crate::dsse::Envelope;
use crate::governance::model::{Group, Member};
use crate::trust::Trust;

use super::message::Kind;

/// The root's role naming the group whose members may place orders.
pub const ORDERS_ROLE: &str = crate::governance::model::Role::Orders.as_str();
/// The root's role naming the group whose members attest reputation.
pub const REPUTATION_ROLE: &str = crate::governance::model::Role::Reputation.as_str();

/// A key that may sign a kind of message: its member and group.
#[derive(Debug, Clone)]
pub struct Signer {
    pub member: String,
    pub group: String,
    ed25519: (PublicKey, String),
    ml_dsa_65: Option<(PublicKey, String)>,
}

impl Signer {
    fn of(group: &str, m: &Member) -> Signer {
        let mut keys = m.keys_with_ids();
        let ed = keys
            .next()
            .map(|(k, id)| (k.clone(), id.to_owned()))
            .unwrap_or_else(|| (m.classical.clone(), m.classical.key_id()));
        let ml = keys.next().map(|(k, id)| (k.clone(), id.to_owned()));
        Signer {
            member: m.id.clone(),
            group: group.to_owned(),
            ed25519: ed,
            ml_dsa_65: ml,
        }
    }

    /// Whether `self` and `other` share a key (one person signing as two roles).
    pub fn shares_key(&self, other: &Signer) -> bool {
        self.key_ids().any(|a| other.key_ids().any(|b| a == b))
    }

    fn key_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.ed25519.1.as_str())
            .chain(self.ml_dsa_65.as_ref().map(|k| k.1.as_str()))
    }

    /// Whether the member is hybrid (both signatures required).
    pub fn hybrid(&self) -> bool {
        self.ml_dsa_65.is_some()
    }
}

/// The keys of one group, by key id (both halves of a hybrid member map to it).
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    by_id: HashMap<String, Signer>,
}

impl KeySet {
    fn of(name: &str, g: &Group, revoked: &HashSet<String>) -> KeySet {
        let mut by_id = HashMap::new();
        for m in &g.members {
            // A member with any revoked key signs nothing (as in approvals).
            if m.keys_with_ids().any(|(_, id)| revoked.contains(id)) {
                continue;
            }
            let s = Signer::of(name, m);
            for id in s.key_ids() {
                by_id.insert(id.to_owned(), s.clone());
            }
        }
        KeySet { by_id }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Who may sign what, from one approved state.
#[derive(Debug, Clone, Default)]
pub struct Signers {
    pub orders: KeySet,
    pub reputation: KeySet,
    /// Every pinned group's keys, by group name: a treaty's ACKs come from the group named
    /// for its provider network.
    pub groups: BTreeMap<String, KeySet>,
}

impl Signers {
    /// From the trust a verified state established. A role the root does not fill leaves its
    /// set empty: nobody may sign that kind (every such message is denied as signed by an
    /// unknown key).
    pub fn from_trust(t: &Trust) -> Signers {
        let revoked: HashSet<String> = t.revoked.keys().cloned().collect();
        let role = |r: &str| {
            t.root
                .roles
                .get(r)
                .and_then(|name| t.groups.get(name).map(|g| (name.as_str(), g)))
        };
        // A provider's ACK keys are its own group's: never the root group's, nor a group that
        // places orders or attests reputation (a treaty naming one as its provider would let
        // requesters acknowledge their own orders).
        let runtime: Vec<&str> = [ORDERS_ROLE, REPUTATION_ROLE]
            .iter()
            .filter_map(|r| t.root.roles.get(*r).map(String::as_str))
            .collect();
        let groups: BTreeMap<&str, &Group> = t
            .groups
            .iter()
            .filter(|(n, _)| n.as_str() != crate::governance::model::ROOT_GROUP)
            .filter(|(n, _)| !runtime.contains(&n.as_str()))
            .map(|(n, g)| (n.as_str(), g))
            .collect();
        Signers::from_groups(role(ORDERS_ROLE), role(REPUTATION_ROLE), &groups, &revoked)
    }

    /// From the groups that fill the `orders` and `reputation` roles and every pinned group
    /// (a provider's ACK keys are its group's), less revoked keys.
    pub fn from_groups(
        orders: Option<(&str, &Group)>,
        reputation: Option<(&str, &Group)>,
        groups: &BTreeMap<&str, &Group>,
        revoked: &HashSet<String>,
    ) -> Signers {
        let set = |g: Option<(&str, &Group)>| {
            g.map(|(n, g)| KeySet::of(n, g, revoked))
                .unwrap_or_default()
        };
        let (orders, reputation) = (set(orders), set(reputation));
        // A key that places orders or attests reputation never acknowledges as a provider,
        // whichever groups it is in (a requester must not ACK its own orders).
        let groups = groups
            .iter()
            .map(|(n, g)| {
                let mut ks = KeySet::of(n, g, revoked);
                ks.by_id.retain(|id, _| {
                    !orders.by_id.contains_key(id) && !reputation.by_id.contains_key(id)
                });
                ((*n).to_owned(), ks)
            })
            .collect();
        Signers {
            orders,
            reputation,
            groups,
        }
    }
}

/// Why a signed message was not accepted as signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("not a {kind} envelope: {reason}", kind = kind.as_str())]
    Malformed { kind: Kind, reason: String },
    #[error("signed by key {keyid}, which may not sign a {kind}", kind = kind.as_str())]
    UnknownKey { kind: Kind, keyid: String },
    #[error("{reason}")]
    Invalid { kind: Kind, reason: String },
}

/// A message whose signature checked out: its payload bytes and who signed it.
#[derive(Debug, Clone)]
pub struct Verified {
    pub payload: Vec<u8>,
    pub signer: Signer,
}

/// Checks that `bytes` is a `kind` envelope signed by exactly one key of `keys` (both halves
/// for a hybrid member), and returns its payload and signer.
pub fn verify(bytes: &[u8], kind: Kind, keys: &KeySet) -> Result<Verified, SignatureProblem> {
    verify_envelope(open(bytes, kind)?, kind, keys)
}

/// Messages already verified against one fixed key set, by the SHA-256 of their bytes: the
/// same reputation attestation rides in many orders, and its hybrid check is half the cost of a
/// decision. Only successes are kept (a forged message costs its full check every time), the
/// set is bounded ([`VerifiedCache::CAPACITY`], one arbitrary entry evicted when full), and a
/// cache belongs to one applied law's [`Signers`]: a new law, with its revocations, starts
/// empty. A cached answer is exactly what [`verify`] would return for the same bytes and keys.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    entries: std::sync::Mutex<HashMap<[u8; 32], Verified>>,
}

impl VerifiedCache {
    /// Entries kept: a few thousand attestations in force at once is a large federation.
    pub const CAPACITY: usize = 4096;

    /// [`verify`] of `bytes`, answered from the cache when these exact bytes verified before.
    pub fn verify(
        &self,
        bytes: &[u8],
        kind: Kind,
        keys: &KeySet,
    ) -> Result<Verified, SignatureProblem> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
        if let Some(v) = self
            .entries
            .lock()
            .ok()
            .and_then(|m| m.get(&digest).cloned())
        {
            return Ok(v);
        }
        let v = verify(bytes, kind, keys)?;
        if let Ok(mut m) = self.entries.lock() {
            if m.len() >= Self::CAPACITY {
                if let Some(k) = m.keys().next().copied() {
                    m.remove(&k);
                }
            }
            m.insert(digest, v.clone());
        }
        Ok(v)
    }

    /// How many verified messages are kept.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parses `bytes` as a `kind` envelope (its own payloadType).
pub fn open(bytes: &[u8], kind: Kind) -> Result<Envelope, SignatureProblem> {
    Envelope::parse_as(bytes, kind.payload_type()).map_err(|e| SignatureProblem::Malformed {
        kind,
        reason: e.to_string(),
    })
}

/// [`verify`] of an envelope already parsed with [`open`].
pub fn verify_envelope(
    env: Envelope,
    kind: Kind,
    keys: &KeySet,
) -> Result<Verified, SignatureProblem> {
    let invalid = |reason: String| SignatureProblem::Invalid { kind, reason };
    let first = env
        .signatures
        .first()
        .ok_or_else(|| invalid("the envelope carries no signature".into()))?;
    let signer = keys
        .by_id
        .get(&first.keyid)
        .ok_or_else(|| SignatureProblem::UnknownKey {
            kind,
            // Named in answers: bounded and escaped, whatever a caller put there.
            keyid: crate::text::escape(crate::text::clip(&first.keyid, 96)).into_owned(),
        })?;
    let want = if signer.hybrid() { 2 } else { 1 };
    if env.signatures.len() != want {
        return Err(invalid(format!(
            "{} signature entries; member {:?} signs with exactly {want} ({})",
            env.signatures.len(),
            signer.member,
            if signer.hybrid() {
                format!(
                    "{} and ML-DSA-65: a hybrid key never signs with one half",
                    signer.ed25519.0.algorithm()
                )
            } else {
                signer.ed25519.0.algorithm().to_string()
            }
        )));
    }
    let msg = crate::dsse::pae(kind.payload_type(), &env.payload);
    let halves = std::iter::once(&signer.ed25519).chain(signer.ml_dsa_65.as_ref());
    for (key, id) in halves {
        let entry = env
            .signatures
            .iter()
            .find(|s| s.keyid == *id)
            .ok_or_else(|| {
                invalid(format!(
                    "no signature by key {id} of member {:?}",
                    signer.member
                ))
            })?;
        if !key.verify(&msg, &entry.sig) {
            return Err(invalid(format!(
                "the signature by key {id} of member {:?} does not verify",
                signer.member
            )));
        }
    }
    Ok(Verified {
        payload: env.payload,
        signer: signer.clone(),
    })
}

/// Signs `payload` as a `kind` message with `key` (both halves for a hybrid key): the envelope
/// bytes, deterministic for a deterministic key.
pub fn sign(
    payload: &[u8],
    kind: Kind,
    key: &crate::crypto::SigningKey,
) -> Result<Vec<u8>, crate::crypto::KeyError> {
    let signatures = crate::dsse::sign(key, kind.payload_type(), payload)?;
    Ok(Envelope {
        payload: payload.to_vec(),
        signatures,
    }
    .to_bytes_as(kind.payload_type()))
}
