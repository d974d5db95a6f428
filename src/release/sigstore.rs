//! Sigstore bundles (v0.3, DSSE) of treaty signatures: one member's classical signature of a
//! release seal or an approval, with an RFC 3161 timestamp over that signature, in the format
//! Sigstore's verifiers read (docs/release.md § Sigstore bundles).
//!
//! Owns the bundle's JSON shape (media type `application/vnd.dev.sigstore.bundle.v0.3+json`:
//! `verificationMaterial.publicKey.hint` naming the key, no transparency-log entries,
//! `timestampVerificationData.rfc3161Timestamps[].signedTimestamp` = the authority's DER
//! `TimeStampResp`; `dsseEnvelope` with exactly one signature), making one per member
//! signature, and checking one against the members a release or approval names.
//!
//! A bundle carries one signature and no ML-DSA half, so it proves neither a threshold nor the
//! post-quantum half: it is an interoperable *view* of one member's classical signature. The
//! treaty envelope stays the authority; `treaty release verify` judges the seal first and only
//! then checks the bundles beside it. Ed25519 signatures are the raw 64 bytes; a P-256 (TPM)
//! member's are ASN.1 DER, as Sigstore's verifiers expect ECDSA.
//!
//! Written from the Sigstore bundle specification (protobuf-specs `sigstore_bundle.proto`) with
//! serde rather than the `sigstore` crate: its bundle types come with an online client stack
//! (OIDC, HTTP, TUF) none of which is used here, and its protobuf-specs crate needs `protoc` to
//! build. Interoperability is tested against `@sigstore/verify`, which this project did not
//! write.

use serde::{Deserialize, Serialize};

use crate::crypto::{b64, unb64, PublicKey};
use crate::dsse::Envelope;

/// The bundle media type this module writes and reads.
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Bundles larger than this are refused before parsing.
pub const MAX_BUNDLE_BYTES: usize = 1 << 20;
/// At most this many timestamps are read from one bundle.
const MAX_TIMESTAMPS: usize = 16;

/// Why a bundle could not be made or does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigstoreError {
    #[error("not a Sigstore bundle: {0}")]
    Malformed(String),
    #[error("media type {0:?} is not {MEDIA_TYPE}")]
    MediaType(String),
    #[error("the bundle has {0} transparency-log entries; treaty writes none and does not check them (verify such a bundle with a Sigstore verifier)")]
    TlogEntries(usize),
    #[error("the bundle carries {0} signatures; a Sigstore DSSE bundle carries exactly one")]
    Signatures(usize),
    #[error("the bundle signs another statement than the one it is beside")]
    OtherStatement,
    #[error("key {0} is not the classical key of a member whose signature counted here")]
    UnknownKey(String),
    #[error("the bundle's key hint {hint} and its signature's key id {keyid} differ")]
    HintMismatch { hint: String, keyid: String },
    #[error("the signature of {member} is not the one the envelope holds and counted")]
    NotTheCountedSignature { member: String },
    #[error("the signature of {member} does not verify over the statement")]
    BadSignature { member: String },
    #[error("no RFC 3161 timestamp over the signature")]
    NoTimestamp,
    #[error("timestamp {index}: {source}")]
    Timestamp {
        index: usize,
        #[source]
        source: crate::tsp::TspError,
    },
    #[error("member {0} has no classical signature in the envelope that verifies")]
    NotSigned(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Bundle {
    media_type: String,
    verification_material: VerificationMaterial,
    dsse_envelope: DsseEnvelope,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerificationMaterial {
    public_key: Hint,
    #[serde(default)]
    tlog_entries: Vec<serde_json::Value>,
    timestamp_verification_data: TimestampData,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Hint {
    hint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TimestampData {
    rfc3161_timestamps: Vec<SignedTimestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignedTimestamp {
    signed_timestamp: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DsseEnvelope {
    payload: String,
    payload_type: String,
    signatures: Vec<DsseSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DsseSignature {
    sig: String,
    keyid: String,
}

/// A member's counted signature: its id, classical key, and the classical signature (as
/// treaty stores it: Ed25519's 64 bytes, P-256's raw r‖s) that the envelope holds and that
/// counted. A bundle is a view of exactly that signature.
#[derive(Debug, Clone)]
pub struct Counted {
    pub member: String,
    pub key: PublicKey,
    pub sig: Vec<u8>,
}

/// The members whose signature over `env`'s payload counts: every half they hold has a
/// verifying entry (a hybrid member needs both, as in a threshold), and none of their keys is
/// in `revoked` (the revocations in force for this statement).
pub fn counted(
    env: &Envelope,
    payload_type: &str,
    members: &[crate::governance::model::Member],
    revoked: &std::collections::HashMap<String, crate::governance::model::Revocation>,
) -> Vec<Counted> {
    let msg = crate::dsse::pae(payload_type, &env.payload);
    let mut out: Vec<Counted> = Vec::new();
    for m in members {
        if m.keys_with_ids().any(|(_, id)| revoked.contains_key(id))
            || out.iter().any(|c| c.member == m.id)
        {
            continue;
        }
        let sig_of = |key: &PublicKey, id: &str| {
            env.signatures
                .iter()
                .find(|s| s.keyid == id && key.verify(&msg, &s.sig))
                .map(|s| s.sig.clone())
        };
        let mut halves = m.keys_with_ids().map(|(k, id)| sig_of(k, id));
        let Some(Some(classical)) = halves.next() else {
            continue;
        };
        if halves.all(|h| h.is_some()) {
            out.push(Counted {
                member: m.id.clone(),
                key: m.classical.clone(),
                sig: classical,
            });
        }
    }
    out
}

/// One bundle made by [`export`].
#[derive(Debug, Clone)]
pub struct Exported {
    pub member: String,
    pub keyid: String,
    /// The bundle's bytes (pretty JSON, a final newline).
    pub bytes: Vec<u8>,
    pub stamp: crate::tsp::Stamp,
}

/// A bundle [`check`] accepted.
#[derive(Debug, Clone)]
pub struct Checked {
    pub member: String,
    pub stamps: Vec<crate::tsp::Stamp>,
}

/// An attacker-supplied identifier, escaped and cut to fit an error line.
fn shorten(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("{}{more}", crate::text::escape(&cut))
}

/// The signature bytes a bundle carries for a classical signature as treaty stores it:
/// Ed25519 unchanged, P-256 raw r‖s as DER.
fn bundle_sig(key: &PublicKey, raw: &[u8]) -> Option<Vec<u8>> {
    match key {
        PublicKey::Ed25519(_) => Some(raw.to_vec()),
        PublicKey::P256(_) => p256::ecdsa::Signature::from_slice(raw)
            .ok()
            .map(|s| s.to_der().as_bytes().to_vec()),
        PublicKey::MlDsa65(_) => None,
    }
}

/// Whether `sig` (as a bundle carries it) is `key`'s signature over `msg`. P-256 signatures
/// are DER and, as in treaty envelopes, only low S counts.
fn bundle_sig_verifies(key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    match key {
        PublicKey::Ed25519(_) => key.verify(msg, sig),
        PublicKey::P256(_) => {
            p256::ecdsa::Signature::from_der(sig).is_ok_and(|s| key.verify(msg, &s.to_bytes()))
        }
        PublicKey::MlDsa65(_) => false,
    }
}

/// One bundle per counted signature (see [`counted`]) over `env`'s payload, each timestamped
/// by `stamp` (which returns the authority's `TimeStampResp` over the bytes it is given,
/// already verified, and the stamp it proves).
pub fn export(
    env: &Envelope,
    payload_type: &str,
    signed: &[Counted],
    mut stamp: impl FnMut(&[u8]) -> Result<(Vec<u8>, crate::tsp::Stamp), crate::tsp::TspError>,
) -> Result<Vec<Exported>, SigstoreError> {
    let mut out = Vec::new();
    for c in signed {
        let (member, key) = (&c.member, &c.key);
        let keyid = key.key_id();
        let sig =
            bundle_sig(key, &c.sig).ok_or_else(|| SigstoreError::NotSigned(member.clone()))?;
        let (resp, st) =
            stamp(&sig).map_err(|source| SigstoreError::Timestamp { index: 0, source })?;
        let bundle = Bundle {
            media_type: MEDIA_TYPE.into(),
            verification_material: VerificationMaterial {
                public_key: Hint {
                    hint: keyid.clone(),
                },
                tlog_entries: Vec::new(),
                timestamp_verification_data: TimestampData {
                    rfc3161_timestamps: vec![SignedTimestamp {
                        signed_timestamp: b64(&resp),
                    }],
                },
            },
            dsse_envelope: DsseEnvelope {
                payload: b64(&env.payload),
                payload_type: payload_type.into(),
                signatures: vec![DsseSignature {
                    sig: b64(&sig),
                    keyid: keyid.clone(),
                }],
            },
        };
        let mut bytes = serde_json::to_vec_pretty(&bundle)
            .map_err(|e| SigstoreError::Malformed(e.to_string()))?;
        bytes.push(b'\n');
        out.push(Exported {
            member: member.clone(),
            keyid,
            bytes,
            stamp: st,
        });
    }
    Ok(out)
}

/// Checks a bundle against the statement it is beside (`payload_type`, `payload`), the
/// signatures that counted for it, and the trusted TSA roots: one signature, exactly one of
/// the counted ones (same key, same signature), over exactly that statement, with at least one
/// RFC 3161 timestamp over the signature that verifies (every timestamp present must). No
/// transparency-log entries are accepted.
pub fn check(
    bytes: &[u8],
    payload_type: &str,
    payload: &[u8],
    signed: &[Counted],
    roots: &crate::tsp::Roots,
) -> Result<Checked, SigstoreError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(SigstoreError::Malformed(format!(
            "{} bytes, over the {MAX_BUNDLE_BYTES} limit",
            bytes.len()
        )));
    }
    // Objects only: serde would read a struct from a JSON array by position, a shape no
    // Sigstore verifier reads.
    let b: Bundle = crate::json::from_slice_objects(bytes)
        .map_err(|e| SigstoreError::Malformed(e.to_string()))?;
    if b.media_type != MEDIA_TYPE {
        return Err(SigstoreError::MediaType(b.media_type));
    }
    let vm = &b.verification_material;
    if !vm.tlog_entries.is_empty() {
        return Err(SigstoreError::TlogEntries(vm.tlog_entries.len()));
    }
    let [sig] = b.dsse_envelope.signatures.as_slice() else {
        return Err(SigstoreError::Signatures(b.dsse_envelope.signatures.len()));
    };
    let body = unb64(&b.dsse_envelope.payload)
        .map_err(|_| SigstoreError::Malformed("payload is not base64".into()))?;
    if body != payload || b.dsse_envelope.payload_type != payload_type {
        return Err(SigstoreError::OtherStatement);
    }
    // The key comes from the counted signatures, never from the bundle: the hint only selects
    // it, and it must agree with the signature entry's key id.
    if sig.keyid != vm.public_key.hint {
        return Err(SigstoreError::HintMismatch {
            hint: shorten(&vm.public_key.hint),
            keyid: shorten(&sig.keyid),
        });
    }
    let c = signed
        .iter()
        .find(|c| c.key.key_id() == vm.public_key.hint)
        .ok_or_else(|| SigstoreError::UnknownKey(shorten(&vm.public_key.hint)))?;
    let (member, key) = (&c.member, &c.key);
    let sig_bytes =
        unb64(&sig.sig).map_err(|_| SigstoreError::Malformed("sig is not base64".into()))?;
    if !bundle_sig_verifies(key, &crate::dsse::pae(payload_type, payload), &sig_bytes) {
        return Err(SigstoreError::BadSignature {
            member: member.clone(),
        });
    }
    // Exactly the signature that counted: a fresh signature by the same key (made with a key
    // revoked since, say) is not a view of it.
    if bundle_sig(key, &c.sig).as_deref() != Some(sig_bytes.as_slice()) {
        return Err(SigstoreError::NotTheCountedSignature {
            member: member.clone(),
        });
    }
    let ts = &vm.timestamp_verification_data.rfc3161_timestamps;
    if ts.is_empty() {
        return Err(SigstoreError::NoTimestamp);
    }
    if ts.len() > MAX_TIMESTAMPS {
        return Err(SigstoreError::Malformed(format!(
            "{} timestamps, over the {MAX_TIMESTAMPS} limit",
            ts.len()
        )));
    }
    let mut stamps = Vec::new();
    for (index, t) in ts.iter().enumerate() {
        let resp = unb64(&t.signed_timestamp)
            .map_err(|_| SigstoreError::Malformed("signedTimestamp is not base64".into()))?;
        let st = crate::tsp::verify_response(&resp, &sig_bytes, None, roots)
            .map_err(|source| SigstoreError::Timestamp { index, source })?;
        stamps.push(st);
    }
    Ok(Checked {
        member: member.clone(),
        stamps,
    })
}

/// The folder of a release's bundles, beside its seal: `DIR/NAME.sigstore/`.
pub fn bundles_dir(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("{name}.sigstore"))
}

/// At most this many bundles are read beside one release.
const MAX_BUNDLES: usize = 256;

/// A seal's statement envelope and the members of the group that sealed it. Callers judge the
/// seal first ([`super::ceremony::check_seal`]): this only reads it.
pub fn seal_statement(
    seal: &[u8],
) -> Result<(Envelope, Vec<crate::governance::model::Member>), SigstoreError> {
    let s: super::ceremony::Seal =
        crate::json::from_slice(seal).map_err(|e| SigstoreError::Malformed(e.to_string()))?;
    let bytes =
        serde_json::to_vec(&s.envelope).map_err(|e| SigstoreError::Malformed(e.to_string()))?;
    let env = Envelope::parse(&bytes).map_err(|e| SigstoreError::Malformed(e.to_string()))?;
    let group = crate::governance::model::Group::validate(&s.group_name, &s.group)
        .map_err(|e| SigstoreError::Malformed(e.to_string()))?;
    Ok((env, group.members))
}

/// The `sigstore` layer of `treaty release verify`: every `*.sigstore.json` in
/// `NAME.sigstore/` checked against the seal's statement, the signatures it counted (the
/// sealing group's, less keys under a revocation in force: `revoked`) and the trusted TSA
/// roots. `None` when there is no such folder (bundles are optional); otherwise the verdict.
pub fn check_release(
    dir: &std::path::Path,
    name: &str,
    seal: &[u8],
    roots: Result<&crate::tsp::Roots, String>,
    revoked: &std::collections::HashMap<String, crate::governance::model::Revocation>,
) -> Option<Result<String, String>> {
    let bdir = bundles_dir(dir, name);
    let entries = match std::fs::read_dir(&bdir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("{}: {e}", bdir.display()))),
    };
    Some((|| {
        let mut files: Vec<std::path::PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".sigstore.json"))
            .take(MAX_BUNDLES + 1)
            .collect();
        if files.len() > MAX_BUNDLES {
            return Err(format!(
                "{}: more than {MAX_BUNDLES} bundles",
                bdir.display()
            ));
        }
        files.sort();
        if files.is_empty() {
            return Err(format!("{}: no *.sigstore.json bundle", bdir.display()));
        }
        let roots = roots.map_err(|e| format!("cannot check the bundles' timestamps: {e}"))?;
        let (env, members) = seal_statement(seal).map_err(|e| e.to_string())?;
        let signed = counted(&env, crate::dsse::PAYLOAD_TYPE, &members, revoked);
        let mut ok: Vec<(String, String)> = Vec::new();
        for f in &files {
            let shown = crate::text::escape(&f.display().to_string()).into_owned();
            let bytes = read_bounded(f).map_err(|e| format!("{shown}: {e}"))?;
            let c = check(
                &bytes,
                crate::dsse::PAYLOAD_TYPE,
                &env.payload,
                &signed,
                roots,
            )
            .map_err(|e| format!("{shown}: {e}"))?;
            let when = c.stamps.first().map(|s| s.time.clone()).unwrap_or_default();
            if ok.iter().any(|(m, _)| *m == c.member) {
                return Err(format!("{shown}: a second bundle for {}", c.member));
            }
            ok.push((c.member, when));
        }
        Ok(format!(
            "{} Sigstore bundle(s) verify, each one member's classical signature of the sealed statement: {}",
            ok.len(),
            ok.iter()
                .map(|(m, when)| format!("{m} (timestamped {when})"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })())
}

/// Reads a regular file of at most [`MAX_BUNDLE_BYTES`] (+1 to tell a larger one); a FIFO,
/// device or symlink is refused before it is opened (opening a FIFO would block).
fn read_bounded(p: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    if !std::fs::symlink_metadata(p)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut out = Vec::new();
    std::fs::File::open(p)?
        .take(MAX_BUNDLE_BYTES as u64 + 1)
        .read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    const PT: &str = crate::dsse::PAYLOAD_TYPE;

    /// A statement signed by `key`, its counted signature, and the honest bundle `export`
    /// makes of it with a stand-in authority (its "token" is not one): every check before
    /// the timestamp runs on it, so the honest bundle fails only at the timestamp.
    fn fixture(key: &SigningKey) -> (Vec<u8>, Vec<Counted>, serde_json::Value) {
        let payload = b"{\"_type\":\"statement\"}".to_vec();
        let signatures = crate::dsse::sign(key, PT, &payload).unwrap();
        let env = Envelope {
            payload: payload.clone(),
            signatures,
        };
        let m = crate::governance::model::Member::new(
            key.member_id.clone(),
            key.classical_public(),
            key.mldsa_public(),
        );
        let signed = counted(&env, PT, &[m], &Default::default());
        assert_eq!(signed.len(), 1, "the member's signature counts");
        let stamp = |_: &[u8]| {
            Ok((
                b"not a token".to_vec(),
                crate::tsp::Stamp {
                    gen_time: 0,
                    time: "1970-01-01T00:00:00Z".into(),
                    tsa: "stand-in".into(),
                    serial: "0".into(),
                    policy: "0".into(),
                },
            ))
        };
        let made = export(&env, PT, &signed, stamp).unwrap();
        let v = crate::json::parse_value(&made[0].bytes).unwrap();
        (payload, signed, v)
    }

    fn roots() -> crate::tsp::Roots {
        crate::tsp::Roots::from_pem(&crate::testvectors::read("rfc3161/sigstage/ts_chain.pem"))
            .unwrap()
    }

    fn run(payload: &[u8], signed: &[Counted], v: &serde_json::Value) -> SigstoreError {
        let bytes = serde_json::to_vec(v).unwrap();
        check(&bytes, PT, payload, signed, &roots()).unwrap_err()
    }

    fn b64_edit(v: &mut serde_json::Value, f: impl FnOnce(&mut Vec<u8>)) {
        let mut b = unb64(v.as_str().unwrap()).unwrap();
        f(&mut b);
        *v = b64(&b).into();
    }

    /// Table-driven from one honest bundle: each mutation is refused at its own check; the
    /// honest bundle passes every check before the timestamp (and fails there, the stand-in
    /// token being none). For an Ed25519 and a P-256 (TPM-shaped) member alike.
    #[test]
    fn each_broken_bundle_is_refused_at_its_own_check() {
        let ed = SigningKey::deterministic("officer-1", &[1; 32]).unwrap();
        let p = SigningKey::deterministic_p256("officer-4", &[4; 32]).unwrap();
        let other = SigningKey::deterministic("officer-2", &[2; 32]).unwrap();
        for key in [&ed, &p] {
            let (payload, signed, honest) = fixture(key);
            assert!(matches!(
                run(&payload, &signed, &honest),
                SigstoreError::Timestamp { index: 0, .. }
            ));
            type Edit = Box<dyn Fn(&mut serde_json::Value)>;
            type Case = (&'static str, Edit, fn(&SigstoreError) -> bool);
            let okid = other.classical_public().key_id();
            let cases: Vec<Case> = vec![
                (
                    "media type",
                    Box::new(|v| {
                        v["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.2+json".into()
                    }),
                    |e| matches!(e, SigstoreError::MediaType(_)),
                ),
                (
                    "a log entry",
                    Box::new(|v| {
                        v["verificationMaterial"]["tlogEntries"] = serde_json::json!([{}])
                    }),
                    |e| matches!(e, SigstoreError::TlogEntries(1)),
                ),
                (
                    "two signatures",
                    Box::new(|v| {
                        let s = v["dsseEnvelope"]["signatures"][0].clone();
                        v["dsseEnvelope"]["signatures"] = serde_json::json!([s.clone(), s]);
                    }),
                    |e| matches!(e, SigstoreError::Signatures(2)),
                ),
                (
                    "no signature",
                    Box::new(|v| v["dsseEnvelope"]["signatures"] = serde_json::json!([])),
                    |e| matches!(e, SigstoreError::Signatures(0)),
                ),
                (
                    "another payload",
                    Box::new(|v| b64_edit(&mut v["dsseEnvelope"]["payload"], |b| b[3] ^= 1)),
                    |e| matches!(e, SigstoreError::OtherStatement),
                ),
                (
                    "another payload type",
                    Box::new(|v| v["dsseEnvelope"]["payloadType"] = "text/plain".into()),
                    |e| matches!(e, SigstoreError::OtherStatement),
                ),
                (
                    "hint differs from keyid",
                    Box::new(|v| v["verificationMaterial"]["publicKey"]["hint"] = "00".into()),
                    |e| matches!(e, SigstoreError::HintMismatch { .. }),
                ),
                (
                    "a key that did not count",
                    Box::new(move |v| {
                        v["verificationMaterial"]["publicKey"]["hint"] = okid.clone().into();
                        v["dsseEnvelope"]["signatures"][0]["keyid"] = okid.clone().into();
                    }),
                    |e| matches!(e, SigstoreError::UnknownKey(_)),
                ),
                (
                    "a flipped signature",
                    Box::new(|v| {
                        b64_edit(&mut v["dsseEnvelope"]["signatures"][0]["sig"], |b| {
                            let n = b.len() - 3;
                            b[n] ^= 1;
                        })
                    }),
                    |e| matches!(e, SigstoreError::BadSignature { .. }),
                ),
                (
                    "no timestamp",
                    Box::new(|v| {
                        v["verificationMaterial"]["timestampVerificationData"]
                            ["rfc3161Timestamps"] = serde_json::json!([])
                    }),
                    |e| matches!(e, SigstoreError::NoTimestamp),
                ),
                (
                    "17 timestamps",
                    Box::new(|v| {
                        let t = v["verificationMaterial"]["timestampVerificationData"]
                            ["rfc3161Timestamps"][0]
                            .clone();
                        v["verificationMaterial"]["timestampVerificationData"]
                            ["rfc3161Timestamps"] = serde_json::Value::Array(vec![t; 17]);
                    }),
                    |e| matches!(e, SigstoreError::Malformed(_)),
                ),
                (
                    "an unknown field",
                    Box::new(|v| {
                        v["verificationMaterial"]["x509CertificateChain"] = serde_json::json!({})
                    }),
                    |e| matches!(e, SigstoreError::Malformed(_)),
                ),
                (
                    "an array for an object",
                    Box::new(|v| {
                        let h = v["verificationMaterial"]["publicKey"]["hint"].clone();
                        v["verificationMaterial"]["publicKey"] = serde_json::json!([h]);
                    }),
                    |e| matches!(e, SigstoreError::Malformed(_)),
                ),
            ];
            for (what, edit, want) in cases {
                let mut v = honest.clone();
                edit(&mut v);
                let e = run(&payload, &signed, &v);
                assert!(want(&e), "{}: {what}: got {e}", key.member_id);
            }
            // Not JSON-shaped the strict way: a repeated member, an oversized file.
            let text = String::from_utf8(serde_json::to_vec(&honest).unwrap()).unwrap();
            let dup = text.replacen("{\"mediaType\"", "{\"mediaType\":\"x\",\"mediaType\"", 1);
            assert!(matches!(
                check(dup.as_bytes(), PT, &payload, &signed, &roots()),
                Err(SigstoreError::Malformed(_))
            ));
            let big = vec![b' '; MAX_BUNDLE_BYTES + 1];
            assert!(matches!(
                check(&big, PT, &payload, &signed, &roots()),
                Err(SigstoreError::Malformed(_))
            ));
            // A valid signature by the key that is not the one that counted.
            let mut elsewhere = signed.clone();
            elsewhere[0].sig = key.sign_classical(b"another message").unwrap();
            assert!(matches!(
                run(&payload, &elsewhere, &honest),
                SigstoreError::NotTheCountedSignature { .. }
            ));
        }
        // P-256 only: the high-S twin and the raw r||s form of the honest signature.
        let (payload, signed, honest) = fixture(&p);
        let der = unb64(
            honest["dsseEnvelope"]["signatures"][0]["sig"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        let (r, s) = sig.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s.as_ref()).unwrap();
        for (what, bytes) in [
            ("high S", high.to_der().as_bytes().to_vec()),
            ("raw r||s", sig.to_bytes().to_vec()),
        ] {
            let mut v = honest.clone();
            v["dsseEnvelope"]["signatures"][0]["sig"] = b64(&bytes).into();
            assert!(
                matches!(
                    run(&payload, &signed, &v),
                    SigstoreError::BadSignature { .. }
                ),
                "{what}"
            );
        }
    }

    /// A revoked key's signature does not count, so no bundle of it is made or accepted; a
    /// hybrid member whose ML-DSA half is missing does not count either.
    #[test]
    fn only_counted_signatures_are_bundled() {
        let k = SigningKey::deterministic("officer-1", &[1; 32]).unwrap();
        let payload = b"statement".to_vec();
        let env = Envelope {
            payload: payload.clone(),
            signatures: crate::dsse::sign(&k, PT, &payload).unwrap(),
        };
        let m = crate::governance::model::Member::new(
            "officer-1".into(),
            k.classical_public(),
            k.mldsa_public(),
        );
        assert_eq!(
            counted(&env, PT, std::slice::from_ref(&m), &Default::default()).len(),
            1
        );
        let mut revoked = std::collections::HashMap::new();
        revoked.insert(
            k.classical_public().key_id(),
            crate::governance::model::Revocation {
                keyid: k.classical_public().key_id(),
                reason: crate::governance::model::RevocationReason::Compromised,
                time: "2026-01-01T00:00:00Z".into(),
            },
        );
        assert!(counted(&env, PT, std::slice::from_ref(&m), &revoked).is_empty());
        let half = Envelope {
            payload,
            signatures: env.signatures[..1].to_vec(),
        };
        assert!(counted(&half, PT, &[m], &Default::default()).is_empty());
    }
}
