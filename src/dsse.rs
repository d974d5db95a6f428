//! DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse `envelope.md` and
//! `protocol.md`, v1.0).
//!
//! Owns parsing (bounded), the pre-authentication encoding, and serialisation. It verifies no
//! signature itself: it hands out `(keyid hint, signature bytes)` and the exact bytes that were
//! signed; [`crate::verify`] decides what counts.

use serde::{Deserialize, Serialize};

use crate::crypto::{b64, unb64};

/// The in-toto payload type (in-toto attestation framework, Envelope layer).
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Envelopes larger than this are refused before parsing.
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;
/// More signature entries than this are refused: a threshold never needs them, and each costs
/// a verification.
pub const MAX_SIGNATURES: usize = 256;

/// Why an envelope is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("envelope is {0} bytes, over the 1 MiB limit")]
    TooLarge(usize),
    #[error("envelope is not valid JSON of the DSSE shape: {0}")]
    Json(#[source] crate::json::JsonError),
    #[error("payloadType is {found:?}, expected {expected:?}")]
    PayloadType {
        found: String,
        expected: &'static str,
    },
    #[error("payload is not standard padded base64")]
    PayloadBase64,
    #[error("signature entry {0} is not standard padded base64")]
    SigBase64(usize),
    #[error("envelope has {0} signature entries, over the limit of {MAX_SIGNATURES}")]
    TooManySignatures(usize),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RawEnvelope {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    signatures: Vec<RawSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RawSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// One signature entry. `keyid` is only a hint for finding the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub keyid: String,
    pub sig: Vec<u8>,
}

/// A parsed envelope. The payload is kept as the exact decoded bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

/// DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths as ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    v.extend_from_slice(b"DSSEv1 ");
    v.extend_from_slice(payload_type.len().to_string().as_bytes());
    v.push(b' ');
    v.extend_from_slice(payload_type.as_bytes());
    v.push(b' ');
    v.extend_from_slice(payload.len().to_string().as_bytes());
    v.push(b' ');
    v.extend_from_slice(payload);
    v
}

impl Envelope {
    /// Parses an envelope; any JSON layout of the standard fields is accepted, other members
    /// are ignored (DSSE `envelope.md`), and the JSON itself must be strict (docs/spec.md
    /// § 1.1): a repeated `payload` would let two readers verify two different payloads.
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Self::parse_as(bytes, PAYLOAD_TYPE)
    }

    /// Parses an envelope whose `payloadType` must be `payload_type` (the runtime messages of
    /// docs/law.md each have their own, so an order can never be read as an ACK).
    pub fn parse_as(bytes: &[u8], payload_type: &'static str) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        let raw: RawEnvelope =
            crate::json::from_slice_objects(bytes).map_err(EnvelopeError::Json)?;
        if raw.payload_type != payload_type {
            return Err(EnvelopeError::PayloadType {
                found: raw.payload_type,
                expected: payload_type,
            });
        }
        if raw.signatures.len() > MAX_SIGNATURES {
            return Err(EnvelopeError::TooManySignatures(raw.signatures.len()));
        }
        let payload = unb64(&raw.payload).map_err(|_| EnvelopeError::PayloadBase64)?;
        let signatures = raw
            .signatures
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(Signature {
                    keyid: s.keyid,
                    sig: unb64(&s.sig).map_err(|_| EnvelopeError::SigBase64(i))?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            payload,
            signatures,
        })
    }

    /// The bytes every signature in this envelope is over.
    pub fn signed_bytes(&self) -> Vec<u8> {
        pae(PAYLOAD_TYPE, &self.payload)
    }

    /// Serialises deterministically: entries sorted by key id then signature, pretty JSON with
    /// a trailing newline, so the same approvals always give the same file.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_as(PAYLOAD_TYPE)
    }

    /// [`Envelope::to_bytes`] with another `payloadType` (the runtime messages').
    pub fn to_bytes_as(&self, payload_type: &str) -> Vec<u8> {
        let mut sigs: Vec<RawSignature> = self
            .signatures
            .iter()
            .map(|s| RawSignature {
                keyid: s.keyid.clone(),
                sig: b64(&s.sig),
            })
            .collect();
        sigs.sort_by(|a, b| (&a.keyid, &a.sig).cmp(&(&b.keyid, &b.sig)));
        let raw = RawEnvelope {
            payload_type: payload_type.to_owned(),
            payload: b64(&self.payload),
            signatures: sigs,
        };
        let mut out = serde_json::to_vec_pretty(&raw).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// `key`'s signatures over the PAE of `payload` as DSSE entries (both halves of a hybrid key,
/// the classical first), each under its own key id. Fails only when a TPM-resident key cannot
/// sign (absent, locked out, another key): never a software fallback.
pub fn sign(
    key: &crate::crypto::SigningKey,
    payload_type: &str,
    payload: &[u8],
) -> Result<Vec<Signature>, crate::crypto::KeyError> {
    Ok(key
        .sign(&pae(payload_type, payload))?
        .into_iter()
        .map(|m| Signature {
            keyid: m.key.key_id(),
            sig: m.sig,
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::disallowed_macros)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn envelopes_round_trip_and_serialise_canonically(
            payload in proptest::collection::vec(any::<u8>(), 0..256),
            sigs in proptest::collection::vec(("[0-9a-f]{0,64}", proptest::collection::vec(any::<u8>(), 0..80)), 0..6),
        ) {
            let e = Envelope {
                payload,
                signatures: sigs.into_iter().map(|(keyid, sig)| Signature { keyid, sig }).collect(),
            };
            let bytes = e.to_bytes();
            let back = Envelope::parse(&bytes).unwrap();
            prop_assert_eq!(&back.payload, &e.payload);
            // Same entries whatever their order, and the serialisation is a fixed point.
            let mut reversed = e.clone();
            reversed.signatures.reverse();
            prop_assert_eq!(reversed.to_bytes(), bytes.clone());
            prop_assert_eq!(back.to_bytes(), bytes);
        }
    }

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // protocol.md: PAE("http://example.com/HelloWorld", "hello world")
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn envelope_round_trips() {
        let e = Envelope {
            payload: b"{}".to_vec(),
            signatures: vec![Signature {
                keyid: "k".into(),
                sig: vec![1, 2, 3],
            }],
        };
        assert_eq!(Envelope::parse(&e.to_bytes()).unwrap(), e);
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        assert!(matches!(Envelope::parse(b"{"), Err(EnvelopeError::Json(_))));
        assert!(matches!(
            Envelope::parse(b"[]"),
            Err(EnvelopeError::Json(_))
        ));
        let wrong_type = br#"{"payloadType":"text/plain","payload":"","signatures":[]}"#;
        assert!(matches!(
            Envelope::parse(wrong_type),
            Err(EnvelopeError::PayloadType { .. })
        ));
        let bad_b64 =
            br#"{"payloadType":"application/vnd.in-toto+json","payload":"@@","signatures":[]}"#;
        assert_eq!(Envelope::parse(bad_b64), Err(EnvelopeError::PayloadBase64));
        let big = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(
            Envelope::parse(&big),
            Err(EnvelopeError::TooLarge(_))
        ));
        let many = format!(
            r#"{{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[{}]}}"#,
            vec![r#"{"keyid":"","sig":""}"#; MAX_SIGNATURES + 1].join(",")
        );
        assert!(matches!(
            Envelope::parse(many.as_bytes()),
            Err(EnvelopeError::TooManySignatures(_))
        ));
    }

    const HONEST: &str = r#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"k","sig":"AQID"}]}"#;

    #[test]
    fn an_envelope_with_a_repeated_payload_is_refused_as_a_duplicate_key() {
        let twice = HONEST.replace(
            r#""payload":"e30=""#,
            r#""payload":"W10=","payload":"e30=""#,
        );
        match Envelope::parse(twice.as_bytes()) {
            Err(EnvelopeError::Json(j)) => {
                assert!(j.is_duplicate_key(), "{j}");
                assert!(j.to_string().contains("\"payload\""), "{j}");
            }
            other => panic!("expected a duplicate key, got {other:?}"),
        }
        // Repeats inside a signature entry, or spelled with an escape, are the same refusal.
        let entry = HONEST.replace(r#""sig":"AQID""#, r#""sig":"AQID","sig":"AQID""#);
        assert!(
            matches!(Envelope::parse(entry.as_bytes()), Err(EnvelopeError::Json(j)) if j.is_duplicate_key())
        );
        let escaped = HONEST.replace(
            r#""payload":"e30=""#,
            r#""payload":"W10=","p\u0061yload":"e30=""#,
        );
        assert!(
            matches!(Envelope::parse(escaped.as_bytes()), Err(EnvelopeError::Json(j)) if j.is_duplicate_key())
        );
    }

    #[test]
    fn the_honest_envelope_with_each_key_once_parses() {
        let e = Envelope::parse(HONEST.as_bytes()).unwrap();
        assert_eq!(e.payload, b"{}");
        // Members in another order and an unknown member (ignored, DSSE) are still honest.
        let other = r#"{"x":{"payload":1},"signatures":[{"sig":"AQID","keyid":"k"}],"payload":"e30=","payloadType":"application/vnd.in-toto+json"}"#;
        assert_eq!(Envelope::parse(other.as_bytes()).unwrap(), e);
    }

    #[test]
    fn a_byte_order_mark_before_an_envelope_is_refused() {
        let mut b = b"\xEF\xBB\xBF".to_vec();
        b.extend_from_slice(HONEST.as_bytes());
        assert!(matches!(
            Envelope::parse(&b),
            Err(EnvelopeError::Json(crate::json::JsonError::ByteOrderMark))
        ));
    }

    #[test]
    fn keyids_must_be_strings_and_signature_lists_may_be_empty() {
        let null_keyid = HONEST.replace(r#""keyid":"k""#, r#""keyid":null"#);
        assert!(Envelope::parse(null_keyid.as_bytes()).is_err());
        let number_keyid = HONEST.replace(r#""keyid":"k""#, r#""keyid":1"#);
        assert!(Envelope::parse(number_keyid.as_bytes()).is_err());
        let no_keyid = HONEST.replace(r#""keyid":"k","#, "");
        assert_eq!(
            Envelope::parse(no_keyid.as_bytes()).unwrap().signatures[0].keyid,
            ""
        );
        let none = HONEST.replace(r#"[{"keyid":"k","sig":"AQID"}]"#, "[]");
        assert!(Envelope::parse(none.as_bytes())
            .unwrap()
            .signatures
            .is_empty());
    }

    #[test]
    fn base64_must_be_standard_padded_and_canonical() {
        for bad in ["e30", "e31=", "e30=\n", "e3-=", "e3_=", " e30="] {
            let text = HONEST.replace(r#""payload":"e30=""#, &format!(r#""payload":"{bad}""#));
            assert!(Envelope::parse(text.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pae_matches_the_published_dsse_test_vector() {
        let text = crate::testvectors::read("dsse/spec/dsse-spec-test-vector.json");
        let v: serde_json::Value = crate::json::parse_value(&text).unwrap();
        let ty = v["payloadType"].as_str().unwrap();
        let body = v["serializedBody"].as_str().unwrap();
        assert_eq!(
            pae(ty, body.as_bytes()),
            v["pae"].as_str().unwrap().as_bytes()
        );
    }

    #[test]
    fn a_real_in_toto_envelope_from_sigstore_parses() {
        let text = crate::testvectors::read("dsse/sigstore-staging-intoto/envelope.dsse.json");
        let e = Envelope::parse(&text).unwrap();
        assert_eq!(e.signatures.len(), 1);
        assert!(e.payload.starts_with(b"{"));
    }
}
