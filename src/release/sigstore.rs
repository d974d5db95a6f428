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
    #[error("key {0} is not the classical key of any member it could speak for")]
    UnknownKey(String),
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

/// A member who may have signed: its id and classical public key.
pub type Signer = (String, PublicKey);

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

/// One bundle per signer whose classical signature over `env`'s payload verifies, each
/// timestamped by `stamp` (which returns the authority's `TimeStampResp` over the bytes it is
/// given, already verified, and the stamp it proves). A signer without a valid signature is
/// an error: the caller named it.
pub fn export(
    env: &Envelope,
    payload_type: &str,
    signers: &[Signer],
    mut stamp: impl FnMut(&[u8]) -> Result<(Vec<u8>, crate::tsp::Stamp), crate::tsp::TspError>,
) -> Result<Vec<Exported>, SigstoreError> {
    let msg = crate::dsse::pae(payload_type, &env.payload);
    let mut out = Vec::new();
    for (member, key) in signers {
        let keyid = key.key_id();
        let raw = env
            .signatures
            .iter()
            .filter(|s| s.keyid == keyid)
            .find(|s| key.verify(&msg, &s.sig))
            .ok_or_else(|| SigstoreError::NotSigned(member.clone()))?;
        let sig =
            bundle_sig(key, &raw.sig).ok_or_else(|| SigstoreError::NotSigned(member.clone()))?;
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

/// Checks a bundle against the statement it is beside (`payload_type`, `payload`), the members
/// who may have made it, and the trusted TSA roots: one signature, by a signer's classical
/// key, over exactly that statement, with at least one RFC 3161 timestamp over the signature
/// that verifies (every timestamp present must). No transparency-log entries are accepted.
pub fn check(
    bytes: &[u8],
    payload_type: &str,
    payload: &[u8],
    signers: &[Signer],
    roots: &crate::tsp::Roots,
) -> Result<Checked, SigstoreError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(SigstoreError::Malformed(format!(
            "{} bytes, over the {MAX_BUNDLE_BYTES} limit",
            bytes.len()
        )));
    }
    let b: Bundle =
        crate::json::from_slice(bytes).map_err(|e| SigstoreError::Malformed(e.to_string()))?;
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
    // The key comes from the signers, never from the bundle: the hint only selects it, and it
    // must agree with the signature entry's key id.
    if sig.keyid != vm.public_key.hint {
        return Err(SigstoreError::UnknownKey(vm.public_key.hint.clone()));
    }
    let (member, key) = signers
        .iter()
        .find(|(_, k)| k.key_id() == vm.public_key.hint)
        .ok_or_else(|| SigstoreError::UnknownKey(vm.public_key.hint.clone()))?;
    let sig_bytes =
        unb64(&sig.sig).map_err(|_| SigstoreError::Malformed("sig is not base64".into()))?;
    if !bundle_sig_verifies(key, &crate::dsse::pae(payload_type, payload), &sig_bytes) {
        return Err(SigstoreError::BadSignature {
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

/// A seal's statement envelope and the members of the group that sealed it (their classical
/// keys). Callers judge the seal first ([`super::ceremony::check_seal`]): this only reads it.
pub fn seal_statement(seal: &[u8]) -> Result<(Envelope, Vec<Signer>), SigstoreError> {
    let s: super::ceremony::Seal =
        crate::json::from_slice(seal).map_err(|e| SigstoreError::Malformed(e.to_string()))?;
    let bytes =
        serde_json::to_vec(&s.envelope).map_err(|e| SigstoreError::Malformed(e.to_string()))?;
    let env = Envelope::parse(&bytes).map_err(|e| SigstoreError::Malformed(e.to_string()))?;
    let group = crate::governance::model::Group::validate(&s.group_name, &s.group)
        .map_err(|e| SigstoreError::Malformed(e.to_string()))?;
    let signers = group
        .members
        .iter()
        .map(|m| (m.id.clone(), m.classical.clone()))
        .collect();
    Ok((env, signers))
}

/// The members of a sealed release whose classical signature is in the seal: the ones a bundle
/// can be exported for.
pub fn sealed_signers(env: &Envelope, signers: &[Signer]) -> Vec<Signer> {
    let msg = crate::dsse::pae(crate::dsse::PAYLOAD_TYPE, &env.payload);
    signers
        .iter()
        .filter(|(_, k)| {
            let kid = k.key_id();
            env.signatures
                .iter()
                .any(|s| s.keyid == kid && k.verify(&msg, &s.sig))
        })
        .cloned()
        .collect()
}

/// The `sigstore` layer of `treaty release verify`: every `*.sigstore.json` in
/// `NAME.sigstore/` checked against the seal's statement, the sealing group and the trusted TSA
/// roots. `None` when there is no such folder (bundles are optional); otherwise the verdict.
pub fn check_release(
    dir: &std::path::Path,
    name: &str,
    seal: &[u8],
    roots: Option<&crate::tsp::Roots>,
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
        let roots = roots.ok_or("no trusted TSA roots to check the bundles' timestamps with")?;
        let (env, signers) = seal_statement(seal).map_err(|e| e.to_string())?;
        let mut ok = Vec::new();
        for f in &files {
            let shown = crate::text::escape(&f.display().to_string()).into_owned();
            let bytes = read_bounded(f).map_err(|e| format!("{shown}: {e}"))?;
            let c = check(
                &bytes,
                crate::dsse::PAYLOAD_TYPE,
                &env.payload,
                &signers,
                roots,
            )
            .map_err(|e| format!("{shown}: {e}"))?;
            let when = c.stamps.first().map(|s| s.time.clone()).unwrap_or_default();
            ok.push(format!("{} (timestamped {when})", c.member));
        }
        Ok(format!(
            "{} Sigstore bundle(s) verify, each one member's classical signature of the sealed statement: {}",
            ok.len(),
            ok.join(", ")
        ))
    })())
}

/// Reads a file of at most [`MAX_BUNDLE_BYTES`] (+1 to tell a larger one).
fn read_bounded(p: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    std::fs::File::open(p)?
        .take(MAX_BUNDLE_BYTES as u64 + 1)
        .read_to_end(&mut out)?;
    Ok(out)
}
