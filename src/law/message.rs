//! The runtime messages (docs/law.md § Messages): orders, provider ACKs and completions, and
//! reputation attestations — their payload types, their strict shapes and their units.
//!
//! Owns parsing a message's payload exactly: strict JSON (no duplicate key, no byte order mark,
//! bounded depth, [`crate::json`]), unknown fields refused, integers only for quantities (so
//! sums are exact in every store and receipts can be canonical JSON), bounded strings and
//! RFC 3339 times. It does not verify signatures ([`super::signed`]) nor judge an order
//! against the law ([`super::decide`]).

use serde::{Deserialize, Serialize};

use crate::time::Instant;

/// The DSSE `payloadType` of an order.
pub const ORDER_PAYLOAD_TYPE: &str = "application/vnd.treaty.order+json";
/// The DSSE `payloadType` of a provider's ACK or completion.
pub const ACK_PAYLOAD_TYPE: &str = "application/vnd.treaty.ack+json";
/// The DSSE `payloadType` of a reputation attestation.
pub const ATTESTATION_PAYLOAD_TYPE: &str = "application/vnd.treaty.attestation+json";

/// A reputation score is in basis points: 0 ..= 10,000 (1.0).
pub const MAX_SCORE_BP: u32 = 10_000;
/// The largest quantity any message may carry (2^53 - 1: exact in every JSON reader).
pub const MAX_QUANTITY: u64 = (1 << 53) - 1;

/// What kind of runtime message, for errors and payload types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Order,
    Ack,
    Attestation,
}

impl Kind {
    pub const fn payload_type(self) -> &'static str {
        match self {
            Kind::Order => ORDER_PAYLOAD_TYPE,
            Kind::Ack => ACK_PAYLOAD_TYPE,
            Kind::Attestation => ATTESTATION_PAYLOAD_TYPE,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Order => "order",
            Kind::Ack => "ack",
            Kind::Attestation => "attestation",
        }
    }
}

/// Why a payload is not a valid message of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("{kind}: not a valid {kind} message: {reason}", kind = kind.as_str())]
    Shape { kind: Kind, reason: String },
    #[error("{kind}: {field}: {reason}", kind = kind.as_str())]
    Field {
        kind: Kind,
        field: &'static str,
        reason: String,
    },
}

/// An order placed under a treaty (docs/law.md § Orders). The requester is whoever signed it:
/// a key of the approved `orders` role group; nothing in the payload names a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    pub spec_version: String,
    pub order_id: String,
    pub treaty_id: String,
    /// 32 to 128 lower-case hex digits; scoped to the signing key.
    pub nonce: String,
    pub issued_at: String,
    /// The order is void after this instant; `not_after - issued_at` must fit in the replay
    /// window less the skew, so no order outlives its nonce's memory.
    pub not_after: String,
    pub region: String,
    /// GPU time asked for, in milli-GPU-hours.
    pub gpu_milli_hours: u64,
    /// Credits the order may spend.
    pub credits: u64,
    /// The longest the job may run, in seconds (capped by the law's maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_seconds: Option<u64>,
    /// A reputation attestation envelope about the signer (JSON text of a DSSE envelope of
    /// payload type [`ATTESTATION_PAYLOAD_TYPE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<serde_json::Value>,
}

/// A provider's answer to an order: `accepted`/`rejected` within the reservation, then
/// `completed`/`failed` with the usage consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub spec_version: String,
    pub order_id: String,
    pub treaty_id: String,
    /// SHA-256 (64 lower-case hex digits) of the order's signed payload: the ACK answers that
    /// order and no other that used the same id.
    pub order_sha256: String,
    pub status: AckStatus,
    pub at: String,
    /// Consumed GPU time in milli-GPU-hours (completions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_gpu_milli_hours: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckStatus {
    Accepted,
    Rejected,
    Completed,
    Failed,
}

impl AckStatus {
    /// Whether this status ends a job (rather than answering the reservation).
    pub const fn ends_job(self) -> bool {
        matches!(self, AckStatus::Completed | AckStatus::Failed)
    }
}

/// A reputation attestation: a holder of the `reputation` role vouches for a requester's score
/// until `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    pub spec_version: String,
    /// The requester's member id in the `orders` role group.
    pub subject: String,
    /// Basis points, 0 ..= 10,000.
    pub score_bp: u32,
    pub issued_at: String,
    pub expires: String,
}

fn field(kind: Kind, field: &'static str, reason: impl Into<String>) -> MessageError {
    MessageError::Field {
        kind,
        field,
        reason: reason.into(),
    }
}

fn parse_json<T: serde::de::DeserializeOwned + Serialize>(
    kind: Kind,
    bytes: &[u8],
) -> Result<T, MessageError> {
    let shape = |reason: String| MessageError::Shape { kind, reason };
    // Strict JSON first; a member present as `null` is refused, never read as absent
    // (docs/spec.md § 1.1, § 9.2).
    let v = crate::json::parse_value(bytes).map_err(|e| shape(e.to_string()))?;
    if let Some((k, _)) = v
        .as_object()
        .and_then(|o| o.iter().find(|(_, x)| x.is_null()))
    {
        return Err(shape(format!(
            "member {:?} is null (leave an optional member out instead)",
            crate::text::clip(k, 64)
        )));
    }
    if !v.is_object() {
        return Err(shape("not a JSON object".into()));
    }
    crate::json::from_slice_objects(bytes).map_err(|e| shape(e.to_string()))
}

fn spec(kind: Kind, v: &str) -> Result<(), MessageError> {
    crate::governance::check_spec_version(v).map_err(|e| field(kind, "spec_version", e.to_string()))
}

fn time(kind: Kind, name: &'static str, v: &str) -> Result<Instant, MessageError> {
    crate::time::parse(v).map_err(|e| field(kind, name, e.to_string()))
}

/// `[A-Za-z0-9._:-]{1,128}`: ids that are safe in logs, URLs and store keys.
fn id(kind: Kind, name: &'static str, v: &str) -> Result<(), MessageError> {
    let ok = (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(field(kind, name, "must match [A-Za-z0-9._:-]{1,128}"))
    }
}

fn quantity(kind: Kind, name: &'static str, v: u64) -> Result<(), MessageError> {
    if v > MAX_QUANTITY {
        return Err(field(
            kind,
            name,
            format!("{v} is over the limit of {MAX_QUANTITY}"),
        ));
    }
    Ok(())
}

impl Order {
    /// Parses and checks an order payload (docs/law.md § Orders).
    pub fn parse(bytes: &[u8]) -> Result<Order, MessageError> {
        let k = Kind::Order;
        let o: Order = parse_json(k, bytes)?;
        spec(k, &o.spec_version)?;
        id(k, "order_id", &o.order_id)?;
        id(k, "treaty_id", &o.treaty_id)?;
        let nonce_ok = (32..=128).contains(&o.nonce.len())
            && o.nonce
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !nonce_ok {
            return Err(field(k, "nonce", "must be 32 to 128 lower-case hex digits"));
        }
        let issued = time(k, "issued_at", &o.issued_at)?;
        let not_after = time(k, "not_after", &o.not_after)?;
        if not_after <= issued {
            return Err(field(k, "not_after", "must be after issued_at"));
        }
        let region_ok = (1..=64).contains(&o.region.len())
            && o.region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(field(k, "region", "must match [a-z0-9-]{1,64}"));
        }
        quantity(k, "gpu_milli_hours", o.gpu_milli_hours)?;
        quantity(k, "credits", o.credits)?;
        if o.gpu_milli_hours == 0 {
            return Err(field(
                k,
                "gpu_milli_hours",
                "an order asks for some GPU time",
            ));
        }
        if o.attestation.as_ref().is_some_and(|a| !a.is_object()) {
            return Err(field(
                k,
                "attestation",
                "must be an attestation envelope (a JSON object)",
            ));
        }
        if let Some(d) = o.max_duration_seconds {
            if d == 0 || d > MAX_QUANTITY {
                return Err(field(k, "max_duration_seconds", "must be 1 ..= 2^53 - 1"));
            }
        }
        Ok(o)
    }

    pub fn issued(&self) -> Instant {
        crate::time::parse(&self.issued_at).unwrap_or(Instant::MIN)
    }

    pub fn expires(&self) -> Instant {
        crate::time::parse(&self.not_after).unwrap_or(Instant::MIN)
    }
}

impl Ack {
    /// Parses and checks an ACK or completion payload (docs/law.md § ACKs).
    pub fn parse(bytes: &[u8]) -> Result<Ack, MessageError> {
        let k = Kind::Ack;
        let a: Ack = parse_json(k, bytes)?;
        spec(k, &a.spec_version)?;
        id(k, "order_id", &a.order_id)?;
        id(k, "treaty_id", &a.treaty_id)?;
        let sha_ok = a.order_sha256.len() == 64
            && a.order_sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !sha_ok {
            return Err(field(k, "order_sha256", "must be 64 lower-case hex digits"));
        }
        time(k, "at", &a.at)?;
        match (a.status.ends_job(), a.used_gpu_milli_hours) {
            (true, None) => {
                return Err(field(
                    k,
                    "used_gpu_milli_hours",
                    "a completion states the usage consumed",
                ))
            }
            (false, Some(_)) => {
                return Err(field(
                    k,
                    "used_gpu_milli_hours",
                    "only a completion states usage",
                ))
            }
            (_, Some(u)) => quantity(k, "used_gpu_milli_hours", u)?,
            (false, None) => {}
        }
        if a.reason.as_ref().is_some_and(|r| r.len() > 2000) {
            return Err(field(k, "reason", "over 2,000 bytes"));
        }
        Ok(a)
    }

    pub fn at(&self) -> Instant {
        crate::time::parse(&self.at).unwrap_or(Instant::MIN)
    }
}

impl Attestation {
    /// Parses and checks an attestation payload (docs/law.md § Reputation).
    pub fn parse(bytes: &[u8]) -> Result<Attestation, MessageError> {
        let k = Kind::Attestation;
        let a: Attestation = parse_json(k, bytes)?;
        spec(k, &a.spec_version)?;
        id(k, "subject", &a.subject)?;
        if a.score_bp > MAX_SCORE_BP {
            return Err(field(
                k,
                "score_bp",
                format!("{} is over {MAX_SCORE_BP}", a.score_bp),
            ));
        }
        let issued = time(k, "issued_at", &a.issued_at)?;
        let expires = time(k, "expires", &a.expires)?;
        if expires <= issued {
            return Err(field(k, "expires", "must be after issued_at"));
        }
        Ok(a)
    }

    pub fn issued(&self) -> Instant {
        crate::time::parse(&self.issued_at).unwrap_or(Instant::MIN)
    }

    pub fn expires(&self) -> Instant {
        crate::time::parse(&self.expires).unwrap_or(Instant::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn order_json() -> serde_json::Value {
        serde_json::json!({
            "spec_version": "1.0",
            "order_id": "ord-1",
            "treaty_id": "AURORA-AKASH-001",
            "nonce": "00112233445566778899aabbccddeeff",
            "issued_at": "2030-01-01T00:00:00Z",
            "not_after": "2030-01-01T00:10:00Z",
            "region": "us-east",
            "gpu_milli_hours": 1500,
            "credits": 1200
        })
    }

    #[test]
    fn an_honest_order_parses_and_each_malformed_field_is_named() {
        let ok = serde_json::to_vec(&order_json()).unwrap();
        assert!(Order::parse(&ok).is_ok());
        let cases: &[(&str, serde_json::Value, &str)] = &[
            ("nonce", serde_json::json!("XYZ"), "nonce"),
            ("nonce", serde_json::json!("00112233"), "nonce"),
            (
                "gpu_milli_hours",
                serde_json::json!(1.5),
                "not a valid order",
            ),
            ("gpu_milli_hours", serde_json::json!(0), "gpu_milli_hours"),
            (
                "gpu_milli_hours",
                serde_json::json!(9_007_199_254_740_992u64),
                "gpu_milli_hours",
            ),
            ("credits", serde_json::json!(-1), "not a valid order"),
            ("issued_at", serde_json::json!("yesterday"), "issued_at"),
            (
                "not_after",
                serde_json::json!("2029-12-31T00:00:00Z"),
                "not_after",
            ),
            ("region", serde_json::json!("US East"), "region"),
            ("order_id", serde_json::json!("a/b"), "order_id"),
            ("spec_version", serde_json::json!("2.0"), "spec_version"),
            ("surprise", serde_json::json!(1), "not a valid order"),
        ];
        for (k, v, want) in cases {
            let mut o = order_json();
            o[*k] = v.clone();
            let e = Order::parse(&serde_json::to_vec(&o).unwrap()).unwrap_err();
            assert!(e.to_string().contains(want), "{k}={v}: {e}");
        }
        // A duplicate key is refused as in governed files.
        let dup = br#"{"spec_version":"1.0","spec_version":"1.0"}"#;
        assert!(Order::parse(dup)
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
    }

    fn schema(name: &str) -> crate::governance::schema::Compiled {
        let text = crate::governance::schema::BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .expect("builtin schema")
            .1;
        crate::governance::schema::compile(
            &crate::json::parse_value(text.as_bytes()).expect("schema json"),
        )
        .expect("schema compiles")
    }

    /// The published schemas (schemas/{order,ack,attestation}.schema.json) and the parsers agree
    /// on the honest messages and on every shape error (times and orderings are the parser's).
    #[test]
    fn the_message_schemas_and_the_parsers_agree() {
        let order = schema("order.schema.json");
        assert!(order.validate(&order_json(), None).is_empty());
        for (k, v) in [
            ("nonce", serde_json::json!("XYZ")),
            ("gpu_milli_hours", serde_json::json!(1.5)),
            ("gpu_milli_hours", serde_json::json!(0)),
            ("credits", serde_json::json!(-1)),
            ("region", serde_json::json!("US East")),
            ("order_id", serde_json::json!("a/b")),
            ("surprise", serde_json::json!(1)),
        ] {
            let mut o = order_json();
            o[k] = v.clone();
            assert!(
                !order.validate(&o, None).is_empty(),
                "schema accepted {k}={v}"
            );
            assert!(
                Order::parse(&serde_json::to_vec(&o).unwrap()).is_err(),
                "parser accepted {k}={v}"
            );
        }
        let ack = schema("ack.schema.json");
        let a = |status: &str, used: Option<u64>| {
            let mut v = serde_json::json!({
                "spec_version": "1.0", "order_id": "ord-1", "treaty_id": "AURORA-AKASH-001",
                "order_sha256": "ab".repeat(32), "status": status, "at": "2030-01-01T00:01:00Z"
            });
            if let Some(u) = used {
                v["used_gpu_milli_hours"] = u.into();
            }
            v
        };
        for (v, ok) in [
            (a("accepted", None), true),
            (a("completed", Some(1)), true),
            (a("accepted", Some(1)), false),
            (a("completed", None), false),
        ] {
            assert_eq!(ack.validate(&v, None).is_empty(), ok, "schema on {v}");
            assert_eq!(
                Ack::parse(&serde_json::to_vec(&v).unwrap()).is_ok(),
                ok,
                "parser on {v}"
            );
        }
        let att = schema("attestation.schema.json");
        let good = serde_json::json!({"spec_version": "1.0", "subject": "acme", "score_bp": 9000,
            "issued_at": "2030-01-01T00:00:00Z", "expires": "2030-01-02T00:00:00Z"});
        assert!(att.validate(&good, None).is_empty());
        let mut bad = good.clone();
        bad["score_bp"] = 10_001.into();
        assert!(!att.validate(&bad, None).is_empty());
        assert!(Attestation::parse(&serde_json::to_vec(&bad).unwrap()).is_err());
    }

    #[test]
    fn acks_state_usage_only_when_they_end_a_job() {
        let ack = |status: &str, used: Option<u64>| {
            let mut v = serde_json::json!({
                "spec_version": "1.0", "order_id": "ord-1", "treaty_id": "AURORA-AKASH-001",
                "order_sha256": "ab".repeat(32),
                "status": status, "at": "2030-01-01T00:01:00Z"
            });
            if let Some(u) = used {
                v["used_gpu_milli_hours"] = u.into();
            }
            Ack::parse(&serde_json::to_vec(&v).unwrap())
        };
        assert!(ack("accepted", None).is_ok());
        assert!(ack("completed", Some(900)).is_ok());
        assert!(ack("accepted", Some(1)).is_err());
        assert!(ack("completed", None).is_err());
        assert!(ack("maybe", None).is_err());
    }

    #[test]
    fn attestations_bound_their_score_and_lifetime() {
        let att = |score: u32, exp: &str| {
            Attestation::parse(
                &serde_json::to_vec(&serde_json::json!({
                    "spec_version": "1.0", "subject": "acme", "score_bp": score,
                    "issued_at": "2030-01-01T00:00:00Z", "expires": exp
                }))
                .unwrap(),
            )
        };
        assert!(att(9000, "2030-01-02T00:00:00Z").is_ok());
        assert!(att(10_001, "2030-01-02T00:00:00Z").is_err());
        assert!(att(9000, "2029-01-02T00:00:00Z").is_err());
    }
}
