//! Runtime-message vectors (docs/spec.md § 9, written to `messages/` beside the cases): an
//! order, an ACK or an attestation envelope, the signer set it is judged against, and the
//! verdict. Each is judged by this build (`treaty::law::signed` and the message parsers)
//! before it is written; generation fails when the verdict is not the one the case intends.

use serde_json::{json, Value};
use std::path::Path;

use treaty::crypto::SigningKey;
use treaty::law::message::{Ack, Attestation, Kind, Order};
use treaty::law::signed;
use treaty::scaffold::{json_bytes, member_entry, write_atomic};

use super::{b64, ed_only, key, other, VectorsError};

/// A verdict on one message: valid, or the first check it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Not an envelope of the kind (shape, payloadType, b64, size).
    EnvelopeMalformed,
    /// The first entry's key id is not a key of the signer set.
    SignerUnknown,
    /// Wrong number of entries for the member, a half missing, or a signature that fails.
    SignatureInvalid,
    /// The payload is not a valid message of the kind (§ 9.2).
    PayloadInvalid,
}

impl Verdict {
    /// The vector's `expect.reason`.
    pub fn reason(self) -> Value {
        match self {
            Verdict::Valid => Value::Null,
            Verdict::EnvelopeMalformed => json!("envelope-malformed"),
            Verdict::SignerUnknown => json!("signer-unknown"),
            Verdict::SignatureInvalid => json!("signature-invalid"),
            Verdict::PayloadInvalid => json!("payload-invalid"),
        }
    }
}

/// This build's verdict on `bytes` as a `kind` message signed by one of `signers`.
pub fn judge(bytes: &[u8], kind: Kind, signers: &[&SigningKey]) -> Result<Verdict, VectorsError> {
    judge_members(
        bytes,
        kind,
        signers.iter().map(|k| member_entry(k)).collect(),
    )
}

/// [`judge`] against member entries (as a vector file lists them).
pub fn judge_members(
    bytes: &[u8],
    kind: Kind,
    members: Vec<treaty::governance::model::MemberEntry>,
) -> Result<Verdict, VectorsError> {
    let group =
        treaty::governance::model::Group::from_file(&treaty::governance::model::GroupFile {
            spec_version: treaty::SPEC_VERSION.into(),
            name: "signers".into(),
            threshold: 1,
            group_id: treaty::scaffold::group_body("signers", 1, members.clone())
                .map_err(other)?
                .group_id,
            members,
        })
        .map_err(other)?;
    let keys = signed::Signers::from_groups(
        Some(("signers", &group)),
        None,
        &std::collections::BTreeMap::new(),
        &std::collections::HashSet::new(),
    )
    .orders;
    let v = match signed::verify(bytes, kind, &keys) {
        Ok(v) => v,
        Err(signed::SignatureProblem::Malformed { .. }) => return Ok(Verdict::EnvelopeMalformed),
        Err(signed::SignatureProblem::UnknownKey { .. }) => return Ok(Verdict::SignerUnknown),
        Err(signed::SignatureProblem::Invalid { .. }) => return Ok(Verdict::SignatureInvalid),
    };
    let ok = match kind {
        Kind::Order => Order::parse(&v.payload).is_ok(),
        Kind::Ack => Ack::parse(&v.payload).is_ok(),
        Kind::Attestation => Attestation::parse(&v.payload).is_ok(),
    };
    Ok(if ok {
        Verdict::Valid
    } else {
        Verdict::PayloadInvalid
    })
}

fn order() -> Value {
    json!({
        "spec_version": "1.0",
        "order_id": "ord-2030-0001",
        "treaty_id": "AURORA-AKASH-001",
        "nonce": "00112233445566778899aabbccddeeff",
        "issued_at": "2030-01-01T12:00:00Z",
        "not_after": "2030-01-01T12:10:00Z",
        "region": "us-east",
        "gpu_milli_hours": 1500,
        "credits": 1200
    })
}

fn ack() -> Value {
    json!({
        "spec_version": "1.0",
        "order_id": "ord-2030-0001",
        "treaty_id": "AURORA-AKASH-001",
        "order_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "status": "completed",
        "at": "2030-01-01T13:00:00Z",
        "used_gpu_milli_hours": 900
    })
}

fn attestation() -> Value {
    json!({
        "spec_version": "1.0",
        "subject": "dispatcher-1",
        "score_bp": 9000,
        "issued_at": "2030-01-01T00:00:00Z",
        "expires": "2030-01-02T00:00:00Z"
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

struct Case {
    name: String,
    description: &'static str,
    kind: Kind,
    envelope: Vec<u8>,
    want: Verdict,
}

/// Writes `dir/messages/<name>.json`; returns how many.
pub fn generate(dir: &Path) -> Result<usize, VectorsError> {
    let dispatcher = key("dispatcher-1")?;
    let provider = ed_only("provider-1")?;
    let reputation = key("reputation-1")?;
    let mallory = key("mallory")?;
    let sign = |v: &Value, kind, k: &SigningKey| -> Result<Vec<u8>, VectorsError> {
        Ok(signed::sign(&bytes(v), kind, k)?)
    };
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut o = order();
        f(&mut o);
        o
    };
    let env_value =
        |b: &[u8]| -> Result<Value, VectorsError> { treaty::json::parse_value(b).map_err(other) };
    let honest = sign(&order(), Kind::Order, &dispatcher)?;
    let mut cases: Vec<Case> = Vec::new();
    let mut push = |name: &str, description, kind, envelope: Vec<u8>, want| {
        cases.push(Case {
            name: name.into(),
            description,
            kind,
            envelope,
            want,
        })
    };
    push(
        "order-honest",
        "an order signed by a hybrid member of the orders group (both halves)",
        Kind::Order,
        honest.clone(),
        Verdict::Valid,
    );
    push(
        "ack-honest-ed25519-member",
        "a completion signed by an Ed25519-only provider member (one entry)",
        Kind::Ack,
        sign(&ack(), Kind::Ack, &provider)?,
        Verdict::Valid,
    );
    push(
        "attestation-honest",
        "an attestation signed by the reputation member",
        Kind::Attestation,
        sign(&attestation(), Kind::Attestation, &reputation)?,
        Verdict::Valid,
    );
    // Envelopes.
    push(
        "order-as-ack-type",
        "an order envelope sent where an ACK is expected: payloadType differs",
        Kind::Ack,
        honest.clone(),
        Verdict::EnvelopeMalformed,
    );
    let mut with_bom = b"\xef\xbb\xbf".to_vec();
    with_bom.extend_from_slice(&honest);
    push(
        "order-envelope-bom",
        "the envelope starts with a byte order mark",
        Kind::Order,
        with_bom,
        Verdict::EnvelopeMalformed,
    );
    let mut e = env_value(&honest)?;
    e["payload"] = json!("not base64!");
    push(
        "order-payload-not-b64",
        "payload is not b64",
        Kind::Order,
        bytes(&e),
        Verdict::EnvelopeMalformed,
    );
    // Signers and signatures.
    push(
        "order-unknown-signer",
        "signed by a key outside the signer set",
        Kind::Order,
        sign(&order(), Kind::Order, &mallory)?,
        Verdict::SignerUnknown,
    );
    let mut e = env_value(&honest)?;
    e["signatures"] = json!([]);
    push(
        "order-no-signature",
        "no signature entry",
        Kind::Order,
        bytes(&e),
        Verdict::SignatureInvalid,
    );
    let mut e = env_value(&honest)?;
    if let Some(a) = e["signatures"].as_array_mut() {
        a.retain(|s| s["sig"].as_str().is_some_and(|x| x.len() < 200));
    }
    push(
        "order-hybrid-ed25519-half-only",
        "a hybrid member signs with its Ed25519 half alone (no downgrade)",
        Kind::Order,
        bytes(&e),
        Verdict::SignatureInvalid,
    );
    let mut e = env_value(&honest)?;
    if let Some(a) = e["signatures"].as_array_mut() {
        let first = a.first().cloned().unwrap_or(Value::Null);
        a.push(first);
    }
    push(
        "order-three-entries",
        "a hybrid member's envelope with a third entry",
        Kind::Order,
        bytes(&e),
        Verdict::SignatureInvalid,
    );
    let mut e = env_value(&honest)?;
    e["payload"] = json!(b64(&bytes(&edit(&|o| o["credits"] = json!(1201)))));
    push(
        "order-payload-changed",
        "the payload was changed after signing",
        Kind::Order,
        bytes(&e),
        Verdict::SignatureInvalid,
    );
    let ack_env = sign(&ack(), Kind::Ack, &provider)?;
    let mut e = env_value(&ack_env)?;
    if let Some(s) = e["signatures"][0]["sig"].as_str() {
        let mut raw = treaty::crypto::unb64(s).map_err(other)?;
        raw[0] ^= 1;
        e["signatures"][0]["sig"] = json!(b64(&raw));
    }
    push(
        "ack-forged-signature",
        "an Ed25519 signature with one bit flipped",
        Kind::Ack,
        bytes(&e),
        Verdict::SignatureInvalid,
    );
    // Payloads.
    let payload_cases: [(&str, &'static str, Value); 10] = [
        (
            "order-unknown-member",
            "an unknown member in the payload",
            edit(&|o| o["priority"] = json!(1)),
        ),
        (
            "order-float-quantity",
            "a quantity written as a float",
            edit(&|o| o["gpu_milli_hours"] = json!(1500.0)),
        ),
        (
            "order-quantity-over-2-53",
            "a quantity above 2^53 - 1",
            edit(&|o| o["credits"] = json!(9_007_199_254_740_992u64)),
        ),
        (
            "order-zero-gpu",
            "an order for no GPU time",
            edit(&|o| o["gpu_milli_hours"] = json!(0)),
        ),
        (
            "order-nonce-upper-case",
            "a nonce in upper-case hex",
            edit(&|o| o["nonce"] = json!("00112233445566778899AABBCCDDEEFF")),
        ),
        (
            "order-not-after-before-issued",
            "not_after before issued_at",
            edit(&|o| o["not_after"] = json!("2030-01-01T11:00:00Z")),
        ),
        (
            "order-bad-region",
            "a region outside [a-z0-9-]",
            edit(&|o| o["region"] = json!("US East")),
        ),
        (
            "order-spec-version-2",
            "spec_version 2.0",
            edit(&|o| o["spec_version"] = json!("2.0")),
        ),
        (
            "order-null-optional",
            "an optional member present as null (null is not absent)",
            edit(&|o| o["max_duration_seconds"] = Value::Null),
        ),
        (
            "order-missing-credits",
            "a required member missing",
            edit(&|o| {
                if let Some(m) = o.as_object_mut() {
                    m.remove("credits");
                }
            }),
        ),
    ];
    for (name, description, v) in payload_cases {
        push(
            name,
            description,
            Kind::Order,
            sign(&v, Kind::Order, &dispatcher)?,
            Verdict::PayloadInvalid,
        );
    }
    let dup = br#"{"spec_version":"1.0","spec_version":"1.0","order_id":"ord-2030-0001","treaty_id":"AURORA-AKASH-001","nonce":"00112233445566778899aabbccddeeff","issued_at":"2030-01-01T12:00:00Z","not_after":"2030-01-01T12:10:00Z","region":"us-east","gpu_milli_hours":1500,"credits":1200}"#;
    push(
        "order-duplicate-member",
        "a member name repeated in the payload",
        Kind::Order,
        signed::sign(dup, Kind::Order, &dispatcher)?,
        Verdict::PayloadInvalid,
    );
    let positional = br#"["1.0","ord-2030-0001","AURORA-AKASH-001","00112233445566778899aabbccddeeff","2030-01-01T12:00:00Z","2030-01-01T12:10:00Z","us-east",1500,1200]"#;
    push(
        "order-payload-array",
        "the payload is a JSON array of the members' values, not an object",
        Kind::Order,
        signed::sign(positional, Kind::Order, &dispatcher)?,
        Verdict::PayloadInvalid,
    );
    push(
        "order-attestation-not-object",
        "the attestation member is not an envelope object",
        Kind::Order,
        sign(
            &edit(&|o| o["attestation"] = json!(5)),
            Kind::Order,
            &dispatcher,
        )?,
        Verdict::PayloadInvalid,
    );
    let e = env_value(&honest)?;
    let as_array = json!([e["payloadType"], e["payload"], e["signatures"]]);
    push(
        "order-envelope-array",
        "the envelope is a JSON array of its members' values",
        Kind::Order,
        bytes(&as_array),
        Verdict::EnvelopeMalformed,
    );
    let mut a = ack();
    if let Some(m) = a.as_object_mut() {
        m.remove("used_gpu_milli_hours");
    }
    push(
        "ack-completion-without-usage",
        "a completion that does not state the usage",
        Kind::Ack,
        sign(&a, Kind::Ack, &provider)?,
        Verdict::PayloadInvalid,
    );
    let mut a = ack();
    a["status"] = json!("accepted");
    push(
        "ack-acceptance-with-usage",
        "an acceptance that states usage",
        Kind::Ack,
        sign(&a, Kind::Ack, &provider)?,
        Verdict::PayloadInvalid,
    );
    let mut a = ack();
    a["order_sha256"] = json!("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08");
    push(
        "ack-digest-upper-case",
        "order_sha256 in upper-case hex",
        Kind::Ack,
        sign(&a, Kind::Ack, &provider)?,
        Verdict::PayloadInvalid,
    );
    let mut t = attestation();
    t["score_bp"] = json!(10_001);
    push(
        "attestation-score-over-10000",
        "a score above 10,000 basis points",
        Kind::Attestation,
        sign(&t, Kind::Attestation, &reputation)?,
        Verdict::PayloadInvalid,
    );
    let mut t = attestation();
    t["expires"] = json!("2030-01-01T00:00:00Z");
    push(
        "attestation-expires-at-issue",
        "expires not after issued_at",
        Kind::Attestation,
        sign(&t, Kind::Attestation, &reputation)?,
        Verdict::PayloadInvalid,
    );

    let signer_set = |kind: Kind| -> Vec<&SigningKey> {
        match kind {
            Kind::Order => vec![&dispatcher],
            Kind::Ack => vec![&provider],
            Kind::Attestation => vec![&reputation],
        }
    };
    for c in &cases {
        let signers = signer_set(c.kind);
        let got = judge(&c.envelope, c.kind, &signers)?;
        if got != c.want {
            return Err(other(format!(
                "message case {}: intended {:?}, got {got:?}",
                c.name, c.want
            )));
        }
        let v = json!({
            "name": c.name,
            "rule": "§9",
            "description": c.description,
            "layer": "messages",
            "kind": c.kind.as_str(),
            "signers": signers.iter().map(|k| member_entry(k)).collect::<Vec<_>>(),
            "envelope": b64(&c.envelope),
            "expect": { "valid": c.want == Verdict::Valid, "reason": c.want.reason() },
        });
        write_atomic(
            &dir.join(format!("messages/{}.json", c.name)),
            &json_bytes(&v),
        )?;
    }
    Ok(cases.len())
}
