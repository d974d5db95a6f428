//! The approval statement: an in-toto Statement v1 (in-toto attestation framework,
//! `spec/v1/statement.md`) whose predicate says what was approved, under which groups.
//!
//! Owns the statement's shape and its deterministic serialisation. A statement binds
//! *this path, these bytes, this version, these groups* (docs/model.md § The approval
//! statement); every signer of a file signs the identical payload.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// in-toto Statement v1 `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type we define (docs/model.md § The approval statement).
pub const PREDICATE_TYPE: &str = "https://treaty.dev/approval/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Approval,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub name: String,
    /// Algorithm name → lowercase hex digest. BTreeMap: sorted, so serialisation is stable.
    pub digest: BTreeMap<String, String>,
}

/// The predicate of an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub spec_version: String,
    /// The `version` field of the approved file.
    pub version: u64,
    /// Every group the delegation requires, by name and pinned `group_id`, sorted by name.
    pub groups: Vec<GroupRef>,
    /// After this instant (RFC 3339) the approval no longer counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRef {
    pub name: String,
    pub group_id: String,
}

impl Statement {
    /// The statement approving `bytes` at `path`.
    pub fn new(
        path: &str,
        bytes: &[u8],
        version: u64,
        mut groups: Vec<GroupRef>,
        expires: Option<String>,
    ) -> Self {
        groups.sort();
        groups.dedup();
        let mut digest = BTreeMap::new();
        digest.insert("blake3".to_owned(), crate::crypto::blake3_hex(bytes));
        digest.insert("sha256".to_owned(), crate::crypto::sha256_hex(bytes));
        Self {
            type_: STATEMENT_TYPE.to_owned(),
            subject: vec![Subject {
                name: path.to_owned(),
                digest,
            }],
            predicate_type: PREDICATE_TYPE.to_owned(),
            predicate: Approval {
                spec_version: crate::SPEC_VERSION.to_owned(),
                version,
                groups,
                expires,
            },
        }
    }

    /// Compact JSON in field order; with sorted maps and lists this is the same bytes for the
    /// same statement, so anyone can recompute what was signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a payload strictly (unknown fields refused).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn statements_round_trip_and_serialise_canonically(
            path in "[a-z]{1,8}/[A-Z0-9-]{1,12}\\.json",
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            version in 0u64..u64::MAX,
            names in proptest::collection::vec("[a-z]{1,6}", 1..4),
        ) {
            let groups: Vec<GroupRef> = names.iter().map(|n| GroupRef { name: n.clone(), group_id: format!("blake3:{n}") }).collect();
            let mut reversed = groups.clone();
            reversed.reverse();
            let a = Statement::new(&path, &bytes, version, groups, None);
            let b = Statement::new(&path, &bytes, version, reversed, None);
            prop_assert_eq!(a.to_bytes(), b.to_bytes());
            prop_assert_eq!(Statement::parse(&a.to_bytes()).unwrap(), a);
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let s = Statement::new("a/b.json", b"x", 1, vec![], None);
        let mut v: serde_json::Value = serde_json::from_slice(&s.to_bytes()).unwrap();
        v["predicate"]["extra"] = serde_json::json!(1);
        assert!(Statement::parse(&serde_json::to_vec(&v).unwrap()).is_err());
    }
}
