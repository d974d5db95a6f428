//! Hybrid signing keys: a classical half — Ed25519 (RFC 8032), or ECDSA P-256 (FIPS 186-5) for
//! keys a TPM 2.0 holds — and ML-DSA-65 (FIPS 204).
//!
//! Owns key encodings, key ids, signature verification with the strictness the security model
//! needs, and private keys at rest. It never decides *whether a signature counts* — that is
//! threshold logic in [`crate::verify`] — and never prints key bytes (`Debug` is redacted).
//!
//! - Ed25519 verification is `verify_strict` (rejects non-canonical S, small-order A and R).
//!   Public keys are additionally refused at load when weak (small order) or not canonically
//!   encoded, so a key that could never verify strictly is a configuration error, not a silent
//!   zero.
//! - ECDSA P-256 (docs/spec.md § 1.1) signs SHA-256 of the message; signatures are raw r‖s
//!   (64 bytes) and only the low-S form verifies, so one key makes one signature per message
//!   shape and a signer can never be counted twice through a malleated copy. Public keys are
//!   SEC1 compressed (33 bytes) and refused in any other encoding.
//! - ML-DSA-65 is the pure (non-pre-hashed) FIPS 204 §5.2 ML-DSA.Sign/Verify over the same bytes
//!   Ed25519 signs, with the fixed context string [`MLDSA_CONTEXT`].
//! - A key id is the lowercase hex SHA-256 of the raw public key bytes.
//! - Private keys are encrypted with Argon2id (RFC 9106) and XChaCha20-Poly1305; the public
//!   half is bound as associated data, so swapping the public keys in a key file is detected.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

use pqcrypto_mldsa::mldsa65;
use pqcrypto_traits::sign::{DetachedSignature as _, PublicKey as _, SecretKey as _};

/// The FIPS 204 context string every treaty ML-DSA signature uses (FIPS 204 §5.2, `ctx`).
/// Fixed and documented so that a signature made for treaty cannot be replayed into another
/// protocol that uses the same ML-DSA key with a different context, and vice versa.
pub const MLDSA_CONTEXT: &[u8] = b"treaty-dsse-v1";

pub const ED25519_PUBLIC_LEN: usize = 32;
pub const ED25519_SIG_LEN: usize = 64;
pub const P256_PUBLIC_LEN: usize = 33;
pub const P256_SIG_LEN: usize = 64;
pub const MLDSA65_PUBLIC_LEN: usize = 1952;
pub const MLDSA65_SECRET_LEN: usize = 4032;
pub const MLDSA65_SIG_LEN: usize = 3309;

/// Standard padded base64 (RFC 4648 §4), the encoding DSSE uses.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard padded base64; anything else is refused.
pub fn unb64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(s)
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lowercase hex BLAKE3 of `bytes`.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Errors about keys and key files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("{what}: not valid base64")]
    Base64 { what: &'static str },
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("ed25519 public key is not a valid point")]
    Ed25519Invalid,
    #[error("ed25519 public key is of small order (weak); it could never verify strictly")]
    Ed25519Weak,
    #[error("ed25519 public key is not canonically encoded")]
    Ed25519NonCanonical,
    #[error("ecdsa p-256 public key is not a point on the curve")]
    P256Invalid,
    #[error("ecdsa p-256 public key must be SEC1 compressed (33 bytes starting 02 or 03)")]
    P256NonCanonical,
    #[error("key file {path}: {source}")]
    Tpm {
        path: String,
        #[source]
        source: crate::tpm::TpmError,
    },
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("key file {path}: wrong passphrase, or the file was altered")]
    Decrypt { path: String },
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read randomness from the operating system: {0}")]
    Random(String),
}

/// The algorithms a member key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    #[serde(rename = "ed25519")]
    Ed25519,
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "ml-dsa-65")]
    MlDsa65,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::MlDsa65 => "ml-dsa-65",
        })
    }
}

/// A public verification key. Closed enum with one `verify` match, so adding an algorithm is
/// a compile error everywhere it must be considered.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    MlDsa65(Box<[u8]>),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("keyid", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Parses and vets an Ed25519 public key.
    pub fn ed25519(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; ED25519_PUBLIC_LEN] = bytes.try_into().map_err(|_| KeyError::Length {
            what: "ed25519 public key",
            expected: ED25519_PUBLIC_LEN,
            got: bytes.len(),
        })?;
        let vk =
            ed25519_dalek::VerifyingKey::from_bytes(&arr).map_err(|_| KeyError::Ed25519Invalid)?;
        if vk.is_weak() {
            return Err(KeyError::Ed25519Weak);
        }
        // Decompression may accept a non-canonical y (>= p); re-encoding reveals it.
        if vk.to_bytes() != arr {
            return Err(KeyError::Ed25519NonCanonical);
        }
        Ok(Self::Ed25519(vk))
    }

    /// Parses an ECDSA P-256 public key: SEC1 compressed, 33 bytes, a point on the curve
    /// (never the identity). The uncompressed and hybrid forms are refused, so each key has
    /// exactly one encoding and so one key id.
    pub fn p256(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != P256_PUBLIC_LEN {
            return Err(KeyError::Length {
                what: "ecdsa p-256 public key",
                expected: P256_PUBLIC_LEN,
                got: bytes.len(),
            });
        }
        if !matches!(bytes[0], 0x02 | 0x03) {
            return Err(KeyError::P256NonCanonical);
        }
        let vk =
            p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|_| KeyError::P256Invalid)?;
        if vk.to_encoded_point(true).as_bytes() != bytes {
            return Err(KeyError::P256NonCanonical);
        }
        Ok(Self::P256(vk))
    }

    /// Parses a member's classical key of `algorithm` (Ed25519 or ECDSA P-256); ML-DSA-65 is
    /// never a classical key.
    pub fn classical(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        match algorithm {
            Algorithm::Ed25519 => Self::ed25519(bytes),
            Algorithm::EcdsaP256 => Self::p256(bytes),
            Algorithm::MlDsa65 => Err(KeyError::KeyFile {
                path: "<member entry>".into(),
                reason: "ml-dsa-65 is not a classical key".into(),
            }),
        }
    }

    /// Parses an ML-DSA-65 public key (FIPS 204 pkEncode output, 1952 bytes).
    pub fn mldsa65(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != MLDSA65_PUBLIC_LEN {
            return Err(KeyError::Length {
                what: "ml-dsa-65 public key",
                expected: MLDSA65_PUBLIC_LEN,
                got: bytes.len(),
            });
        }
        Ok(Self::MlDsa65(bytes.into()))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
            PublicKey::P256(_) => Algorithm::EcdsaP256,
            PublicKey::MlDsa65(_) => Algorithm::MlDsa65,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(k) => k.to_bytes().to_vec(),
            PublicKey::P256(k) => k.to_encoded_point(true).as_bytes().to_vec(),
            PublicKey::MlDsa65(b) => b.to_vec(),
        }
    }

    /// SHA-256 of the raw public key bytes, lowercase hex.
    pub fn key_id(&self) -> String {
        sha256_hex(&self.bytes())
    }

    /// Verifies `sig` over `msg`. Never panics; any malformed input is simply `false`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(vk) => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
                    return false;
                };
                vk.verify_strict(msg, &sig).is_ok()
            }
            PublicKey::P256(vk) => {
                use p256::ecdsa::signature::Verifier as _;
                if sig.len() != P256_SIG_LEN {
                    return false;
                }
                let Ok(sig) = p256::ecdsa::Signature::from_slice(sig) else {
                    return false;
                };
                // High S is the malleated twin of a valid signature: refused (spec § 1.1).
                if sig.normalize_s().is_some() {
                    return false;
                }
                vk.verify(msg, &sig).is_ok()
            }
            PublicKey::MlDsa65(pk) => {
                if sig.len() != MLDSA65_SIG_LEN {
                    return false;
                }
                mldsa65_verify(pk, msg, MLDSA_CONTEXT, sig)
            }
        }
    }
}

/// FIPS 204 ML-DSA.Verify (Alg. 3) of ML-DSA-65 with context `ctx`, by libcrux (AVX2 when the
/// CPU has it, portable otherwise). Any length or context error is `false`, never a panic.
pub fn mldsa65_verify(pk: &[u8], msg: &[u8], ctx: &[u8], sig: &[u8]) -> bool {
    use libcrux_ml_dsa::ml_dsa_65 as lc;
    let (Ok(pk), Ok(sig)) = (
        <[u8; MLDSA65_PUBLIC_LEN]>::try_from(pk),
        <[u8; MLDSA65_SIG_LEN]>::try_from(sig),
    ) else {
        return false;
    };
    if ctx.len() > 255 {
        return false;
    }
    lc::verify(
        &lc::MLDSA65VerificationKey::new(pk),
        msg,
        ctx,
        &lc::MLDSA65Signature::new(sig),
    )
    .is_ok()
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, KeyError> {
    let mut buf = Zeroizing::new([0u8; N]);
    getrandom::fill(buf.as_mut()).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(buf)
}

/// The classical half of a member's key.
enum Classical {
    Ed25519(ed25519_dalek::SigningKey),
    /// A software P-256 key: only the spec's reproducible test vectors make one
    /// ([`SigningKey::deterministic_p256`]); members hold theirs in a TPM.
    P256(p256::ecdsa::SigningKey),
    /// A P-256 key that never leaves a TPM 2.0 (docs/security.md § TPM-resident keys).
    Tpm(crate::tpm::TpmKey),
}

/// A member's hybrid signing key: a classical half (Ed25519, or ECDSA P-256 in a TPM), plus
/// ML-DSA-65.
pub struct SigningKey {
    pub member_id: String,
    classical: Classical,
    mldsa: Option<(mldsa65::SecretKey, mldsa65::PublicKey)>,
    /// Set only for [`SigningKey::deterministic`] keys: the FIPS 204 seed ξ, so signing can
    /// use the deterministic variant and the test vectors come out byte-identical each time.
    mldsa_seed: Option<Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("member_id", &self.member_id)
            .finish_non_exhaustive()
    }
}

/// One signature made by a [`SigningKey`].
#[derive(Debug, Clone)]
pub struct MadeSignature {
    pub key: PublicKey,
    pub sig: Vec<u8>,
}

impl SigningKey {
    /// Generates a fresh hybrid key from the operating system's randomness.
    pub fn generate(member_id: &str) -> Result<Self, KeyError> {
        let seed = random::<32>()?;
        let (pk, sk) = mldsa65::keypair();
        Ok(Self {
            member_id: member_id.to_owned(),
            classical: Classical::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)),
            mldsa: Some((sk, pk)),
            mldsa_seed: None,
        })
    }

    /// The same key without its ML-DSA-65 half: an Ed25519-only member, which the key file
    /// format allows (such a member signs with one signature).
    pub fn without_ml_dsa(mut self) -> Self {
        self.mldsa = None;
        self.mldsa_seed = None;
        self
    }

    /// A reproducible hybrid key derived from `seed`, for the spec's test vectors
    /// (docs/spec.md § 8) and nothing else: anyone with the seed has the key, and the seeds
    /// are public. Its ML-DSA-65 half is FIPS 204 ML-DSA.KeyGen_internal(ξ) (Algorithm 6) and
    /// it signs with the deterministic variant of ML-DSA.Sign (Algorithm 2, rnd = 0³²), so the
    /// same inputs give the same envelope bytes on every run. Verification is unchanged: the
    /// signatures are ordinary ML-DSA-65 signatures.
    pub fn deterministic(member_id: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        let ed_seed = Zeroizing::new(blake3::derive_key(
            "treaty test-vector key ed25519 v1",
            seed,
        ));
        let ed = ed25519_dalek::SigningKey::from_bytes(&ed_seed);
        Self::deterministic_with(member_id, seed, Classical::Ed25519(ed))
    }

    /// A reproducible key whose classical half is ECDSA P-256 — the shape of a TPM member —
    /// for the spec's test vectors only (docs/spec.md § 8): the scalar is derived from `seed`
    /// and signatures are RFC 6979 deterministic with low S, so vectors are byte-identical on
    /// every run. Its ML-DSA-65 half is derived as in [`SigningKey::deterministic`].
    pub fn deterministic_p256(member_id: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        let d = Zeroizing::new(blake3::derive_key("treaty test-vector key p-256 v1", seed));
        // A 256-bit string is a valid scalar unless it is 0 or ≥ n (probability ~2^-32):
        // refused rather than reduced, so the derivation stays the one documented.
        let sk =
            p256::ecdsa::SigningKey::from_slice(d.as_ref()).map_err(|_| KeyError::KeyFile {
                path: "<test vector seed>".into(),
                reason: "seed derives no valid p-256 scalar".into(),
            })?;
        Self::deterministic_with(member_id, seed, Classical::P256(sk))
    }

    /// `classical` with the ML-DSA-65 half derived from `seed` (FIPS 204 KeyGen_internal).
    fn deterministic_with(
        member_id: &str,
        seed: &[u8; 32],
        classical: Classical,
    ) -> Result<Self, KeyError> {
        let xi = Zeroizing::new(blake3::derive_key(
            "treaty test-vector key ml-dsa-65 v1",
            seed,
        ));
        let rc = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&(*xi).into());
        let pk_bytes = rc.expanded_key().verifying_key().encode();
        // skEncode (FIPS 204 Algorithm 24) is the format PQClean reads; ml-dsa deprecates it
        // only in favour of storing the seed, which we cannot hand to PQClean.
        #[allow(deprecated)]
        let sk_bytes = Zeroizing::new(rc.expanded_key().to_expanded().to_vec());
        let sk = mldsa65::SecretKey::from_bytes(&sk_bytes).map_err(|_| KeyError::Length {
            what: "ml-dsa-65 secret key",
            expected: MLDSA65_SECRET_LEN,
            got: sk_bytes.len(),
        })?;
        let pk =
            mldsa65::PublicKey::from_bytes(pk_bytes.as_slice()).map_err(|_| KeyError::Length {
                what: "ml-dsa-65 public key",
                expected: MLDSA65_PUBLIC_LEN,
                got: pk_bytes.len(),
            })?;
        Ok(Self {
            member_id: member_id.to_owned(),
            classical,
            mldsa: Some((sk, pk)),
            mldsa_seed: Some(xi),
        })
    }

    /// The classical public key: Ed25519, or ECDSA P-256 for a TPM-resident key.
    pub fn classical_public(&self) -> PublicKey {
        match &self.classical {
            Classical::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            Classical::P256(k) => PublicKey::P256(*k.verifying_key()),
            Classical::Tpm(k) => PublicKey::P256(*k.public()),
        }
    }

    /// Whether the classical half lives in a TPM.
    pub fn in_tpm(&self) -> bool {
        matches!(self.classical, Classical::Tpm(_))
    }

    pub fn mldsa_public(&self) -> Option<PublicKey> {
        self.mldsa
            .as_ref()
            .map(|(_, pk)| PublicKey::MlDsa65(pk.as_bytes().into()))
    }

    /// The classical signature alone (for formats that carry one signature, such as C2SP
    /// notes): Ed25519's 64 bytes, or P-256's raw r‖s with low S. A TPM that is gone, locked
    /// out or holds another key is an error, never a software fallback.
    pub fn sign_classical(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        use ed25519_dalek::Signer as _;
        Ok(match &self.classical {
            Classical::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
            Classical::P256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.normalize_s().unwrap_or(sig).to_bytes().to_vec()
            }
            Classical::Tpm(k) => k.sign(msg).map_err(|source| KeyError::Tpm {
                path: k.path().to_owned(),
                source,
            })?,
        })
    }

    /// Signs `msg` with every key this member holds (the classical half first).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<MadeSignature>, KeyError> {
        let mut out = vec![MadeSignature {
            key: self.classical_public(),
            sig: self.sign_classical(msg)?,
        }];
        if let Some((sk, pk)) = &self.mldsa {
            let deterministic = self.mldsa_seed.as_ref().and_then(|xi| {
                ml_dsa::ExpandedSigningKey::<ml_dsa::MlDsa65>::from_seed(&(**xi).into())
                    .sign_deterministic(msg, MLDSA_CONTEXT)
                    .ok()
                    .map(|s| s.encode().to_vec())
            });
            let sig = deterministic.unwrap_or_else(|| {
                mldsa65::detached_sign_ctx(msg, MLDSA_CONTEXT, sk)
                    .as_bytes()
                    .to_vec()
            });
            out.push(MadeSignature {
                key: PublicKey::MlDsa65(pk.as_bytes().into()),
                sig,
            });
        }
        Ok(out)
    }

    fn secret_bytes(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let Classical::Ed25519(ed) = &self.classical else {
            return Err(KeyError::KeyFile {
                path: "<new key>".into(),
                reason: "only an Ed25519 member key is written to a key file in software; a P-256 key lives in a TPM (`treaty key gen --tpm`)".into(),
            });
        };
        let mut v = Zeroizing::new(Vec::with_capacity(32 + MLDSA65_SECRET_LEN));
        v.extend_from_slice(&ed.to_bytes());
        if let Some((sk, _)) = &self.mldsa {
            v.extend_from_slice(sk.as_bytes());
        }
        Ok(v)
    }

    /// Serialises the key for storage. With `passphrase`, encrypted (Argon2id +
    /// XChaCha20-Poly1305); without, plain and loudly marked.
    pub fn to_file(&self, passphrase: Option<&str>) -> Result<KeyFile, KeyError> {
        let secret = self.secret_bytes()?;
        let public = KeyFilePublic {
            member_id: self.member_id.clone(),
            ed25519: Some(b64(&self.classical_public().bytes())),
            p256: None,
            ml_dsa_65: self.mldsa_public().map(|k| b64(&k.bytes())),
        };
        let (protection, blob) = match passphrase {
            None => (
                KeyProtection::None {
                    warning: UNENCRYPTED_WARNING.to_owned(),
                },
                b64(&secret),
            ),
            Some(pass) => {
                use chacha20poly1305::aead::{Aead, KeyInit, Payload};
                let salt = random::<16>()?;
                let nonce = random::<24>()?;
                let params = KdfParams::default();
                let key = derive(pass, salt.as_ref(), &params, "<new key>")?;
                let cipher = chacha20poly1305::XChaCha20Poly1305::new(key.as_ref().into());
                let aad = public.aad();
                let ct = cipher
                    .encrypt(
                        nonce.as_ref().into(),
                        Payload {
                            msg: &secret,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| KeyError::KeyFile {
                        path: "<new key>".into(),
                        reason: "encryption failed".into(),
                    })?;
                (
                    KeyProtection::Argon2idXChaCha20Poly1305 {
                        salt: b64(salt.as_ref()),
                        nonce: b64(nonce.as_ref()),
                        m_cost_kib: params.m_cost_kib,
                        t_cost: params.t_cost,
                        p_cost: params.p_cost,
                    },
                    b64(&ct),
                )
            }
        };
        Ok(KeyFile {
            spec_version: crate::SPEC_VERSION.to_owned(),
            kind: "treaty-private-key".to_owned(),
            public,
            protection,
            secret: blob,
        })
    }

    /// Loads a key file; `passphrase` is asked for only when the file is encrypted.
    pub fn from_file(
        file: &KeyFile,
        path: &str,
        passphrase: impl FnOnce() -> Result<String, KeyError>,
    ) -> Result<Self, KeyError> {
        let bad = |reason: &str| KeyError::KeyFile {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if file.kind != "treaty-private-key" {
            return Err(bad("not a treaty private key (kind)"));
        }
        crate::spec::check_spec_version(&file.spec_version).map_err(|e| bad(&e.to_string()))?;
        if let KeyProtection::Tpm2 { .. } = &file.protection {
            return Self::from_tpm_file(file, path, None, passphrase);
        }
        if file.public.p256.is_some() {
            return Err(bad(
                "a p256 key lives in a TPM: its file's protection scheme must be tpm2",
            ));
        }
        let ed_public = file
            .public
            .ed25519
            .as_deref()
            .ok_or_else(|| bad("the public half has no ed25519 key"))?;
        let secret: Zeroizing<Vec<u8>> = match &file.protection {
            KeyProtection::Tpm2 { .. } => return Err(bad("unreachable: tpm2 handled above")),
            KeyProtection::None { .. } => {
                Zeroizing::new(unb64(&file.secret).map_err(|_| bad("secret is not base64"))?)
            }
            KeyProtection::Argon2idXChaCha20Poly1305 {
                salt,
                nonce,
                m_cost_kib,
                t_cost,
                p_cost,
            } => {
                use chacha20poly1305::aead::{Aead, KeyInit, Payload};
                let salt = unb64(salt).map_err(|_| bad("salt is not base64"))?;
                let nonce = unb64(nonce).map_err(|_| bad("nonce is not base64"))?;
                if nonce.len() != 24 {
                    return Err(bad("nonce must be 24 bytes"));
                }
                // Bounds keep a hostile key file from asking for terabytes of memory.
                if *m_cost_kib > 4 * 1024 * 1024 || *t_cost > 64 || *p_cost > 16 {
                    return Err(bad("argon2 parameters are out of range"));
                }
                let ct = unb64(&file.secret).map_err(|_| bad("secret is not base64"))?;
                let pass = passphrase()?;
                let params = KdfParams {
                    m_cost_kib: *m_cost_kib,
                    t_cost: *t_cost,
                    p_cost: *p_cost,
                };
                let key = derive(&pass, &salt, &params, path)?;
                let cipher = chacha20poly1305::XChaCha20Poly1305::new(key.as_ref().into());
                let aad = file.public.aad();
                Zeroizing::new(
                    cipher
                        .decrypt(
                            nonce.as_slice().into(),
                            Payload {
                                msg: &ct,
                                aad: &aad,
                            },
                        )
                        .map_err(|_| KeyError::Decrypt {
                            path: path.to_owned(),
                        })?,
                )
            }
        };
        let (seed, rest) = secret
            .split_first_chunk::<32>()
            .ok_or_else(|| bad("secret is too short"))?;
        let ed = ed25519_dalek::SigningKey::from_bytes(seed);
        let key = Self {
            member_id: file.public.member_id.clone(),
            classical: Classical::Ed25519(ed),
            mldsa: ml_dsa_half(rest, &file.public, path)?,
            mldsa_seed: None,
        };
        // The stored public half must be the one the secret derives (Ed25519) and must pair
        // with the secret (ML-DSA: a test signature), or the file was tampered with.
        if b64(&key.classical_public().bytes()) != ed_public {
            return Err(bad("ed25519 public key does not match the secret key"));
        }
        key.check_ml_dsa(path)?;
        Ok(key)
    }

    /// An ML-DSA half that does not verify under its published public key means a tampered
    /// file (a test signature, as for software keys).
    fn check_ml_dsa(&self, path: &str) -> Result<(), KeyError> {
        let Some((sk, pk)) = &self.mldsa else {
            return Ok(());
        };
        let sig = mldsa65::detached_sign_ctx(b"treaty key check", MLDSA_CONTEXT, sk);
        if !PublicKey::MlDsa65(pk.as_bytes().into()).verify(b"treaty key check", sig.as_bytes()) {
            return Err(KeyError::KeyFile {
                path: path.to_owned(),
                reason: "ml-dsa-65 public key does not match the secret key".into(),
            });
        }
        Ok(())
    }

    /// Creates a member key in the TPM at `tcti` (`treaty key gen --tpm`): the P-256 half is
    /// made inside the TPM and never leaves it; the ML-DSA-65 half is made here and written
    /// encrypted under a key the TPM keeps sealed. With `passphrase`, both TPM objects need it.
    pub fn generate_tpm(
        member_id: &str,
        tcti: &str,
        passphrase: Option<&str>,
    ) -> Result<(Self, KeyFile), KeyError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let tpm_err = |source| KeyError::Tpm {
            path: "<new key>".into(),
            source,
        };
        let opened = crate::tpm::create(tcti, passphrase).map_err(tpm_err)?;
        let (pk, sk) = mldsa65::keypair();
        let public = KeyFilePublic {
            member_id: member_id.to_owned(),
            ed25519: None,
            p256: Some(b64(&PublicKey::P256(*opened.key.public()).bytes())),
            ml_dsa_65: Some(b64(pk.as_bytes())),
        };
        let nonce = random::<24>()?;
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(opened.sealed.as_ref().into());
        let ct = cipher
            .encrypt(
                nonce.as_ref().into(),
                Payload {
                    msg: sk.as_bytes(),
                    aad: &public.aad(),
                },
            )
            .map_err(|_| KeyError::KeyFile {
                path: "<new key>".into(),
                reason: "encryption failed".into(),
            })?;
        let blobs = opened.key.blobs();
        let file = KeyFile {
            spec_version: crate::SPEC_VERSION.to_owned(),
            kind: "treaty-private-key".to_owned(),
            public,
            protection: KeyProtection::Tpm2 {
                tcti: opened.key.tcti().to_owned(),
                parent: crate::tpm::PARENT.to_owned(),
                signing_public: b64(&blobs.signing_public),
                signing_private: b64(&blobs.signing_private),
                seal_public: b64(&blobs.seal_public),
                seal_private: b64(&blobs.seal_private),
                nonce: b64(nonce.as_ref()),
                passphrase: passphrase.is_some(),
            },
            secret: b64(&ct),
        };
        let key = Self {
            member_id: member_id.to_owned(),
            classical: Classical::Tpm(opened.key),
            mldsa: Some((sk, pk)),
            mldsa_seed: None,
        };
        Ok((key, file))
    }

    /// Loads a TPM key file through the TPM `tcti` names (chosen by the caller, not by the
    /// file): how tests and tools reach a software TPM without `TREATY_TPM_TCTI`.
    pub fn from_file_with_tcti(
        file: &KeyFile,
        path: &str,
        tcti: &str,
        passphrase: impl FnOnce() -> Result<String, KeyError>,
    ) -> Result<Self, KeyError> {
        Self::from_tpm_file(file, path, Some(tcti), passphrase)
    }

    fn from_tpm_file(
        file: &KeyFile,
        path: &str,
        chosen_tcti: Option<&str>,
        passphrase: impl FnOnce() -> Result<String, KeyError>,
    ) -> Result<Self, KeyError> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let bad = |reason: &str| KeyError::KeyFile {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let KeyProtection::Tpm2 {
            tcti,
            parent,
            signing_public,
            signing_private,
            seal_public,
            seal_private,
            nonce,
            passphrase: needs_passphrase,
        } = &file.protection
        else {
            return Err(bad("not a tpm2 key file"));
        };
        if parent != crate::tpm::PARENT {
            return Err(bad(&format!(
                "parent {parent:?} is not one this version knows ({:?})",
                crate::tpm::PARENT
            )));
        }
        if file.public.ed25519.is_some() {
            return Err(bad(
                "a tpm2 key file carries a p256 key, not an ed25519 one",
            ));
        }
        let p256_b64 = file
            .public
            .p256
            .as_deref()
            .ok_or_else(|| bad("a tpm2 key file must carry its p256 public key"))?;
        let PublicKey::P256(public) = unb64(p256_b64)
            .map_err(|_| bad("p256 is not base64"))
            .and_then(|b| PublicKey::p256(&b).map_err(|e| bad(&e.to_string())))?
        else {
            return Err(bad("p256 is not a p-256 key"));
        };
        let blob =
            |field: &str, v: &str| unb64(v).map_err(|_| bad(&format!("{field} is not base64")));
        let nonce = blob("nonce", nonce)?;
        if nonce.len() != 24 {
            return Err(bad("nonce must be 24 bytes"));
        }
        let blobs = crate::tpm::TpmBlobs {
            signing_public: blob("signing_public", signing_public)?,
            signing_private: blob("signing_private", signing_private)?,
            seal_public: blob("seal_public", seal_public)?,
            seal_private: blob("seal_private", seal_private)?,
        };
        let ct = blob("secret", &file.secret)?;
        if !crate::tpm::AVAILABLE {
            return Err(KeyError::Tpm {
                path: path.to_owned(),
                source: crate::tpm::TpmError::NotBuilt,
            });
        }
        // Which TPM, before the passphrase is asked for: a refused TCTI asks nothing.
        let tcti = match chosen_tcti {
            Some(t) => t.to_owned(),
            None => crate::tpm::tcti_for_file(tcti).map_err(|source| KeyError::Tpm {
                path: path.to_owned(),
                source,
            })?,
        };
        let pass = if *needs_passphrase {
            Some(Zeroizing::new(passphrase()?))
        } else {
            None
        };
        let opened = crate::tpm::open(
            path,
            &tcti,
            blobs,
            pass.as_deref().map(|p| p.as_str()),
            public,
        )
        .map_err(|source| KeyError::Tpm {
            path: path.to_owned(),
            source,
        })?;
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(opened.sealed.as_ref().into());
        let secret = Zeroizing::new(
            cipher
                .decrypt(
                    nonce.as_slice().into(),
                    Payload {
                        msg: &ct,
                        aad: &file.public.aad(),
                    },
                )
                .map_err(|_| bad("the ML-DSA half does not decrypt under the key this TPM keeps sealed: the file was altered"))?,
        );
        let key = Self {
            member_id: file.public.member_id.clone(),
            classical: Classical::Tpm(opened.key),
            mldsa: ml_dsa_half(&secret, &file.public, path)?,
            mldsa_seed: None,
        };
        if key.mldsa.is_none() {
            return Err(bad("a tpm2 key file must carry an ML-DSA-65 half"));
        }
        key.check_ml_dsa(path)?;
        Ok(key)
    }

    /// Reads a key file from disk.
    pub fn load(
        path: &std::path::Path,
        passphrase: impl FnOnce() -> Result<String, KeyError>,
    ) -> Result<Self, KeyError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: p.clone(),
            source,
        })?;
        let file: KeyFile = crate::json::from_str(&text).map_err(|e| {
            // Say what was passed and what was expected: the public half (`ID.pub.json`) is the
            // most common wrong file, and its parse error alone names no way out.
            let public = crate::json::parse_value(text.as_bytes()).is_ok_and(|v| {
                (v.get("ed25519").is_some() || v.get("p256").is_some())
                    && v.get("id").is_some()
                    && v.get("secret").is_none()
            });
            KeyError::KeyFile {
                path: p.clone(),
                reason: if public {
                    let private = p.strip_suffix(".pub.json").map_or_else(
                        || "the private key file ID.key".to_owned(),
                        |stem| format!("{stem}.key"),
                    );
                    format!("this is a public key (a member entry); signing needs the private key: pass {private}")
                } else {
                    format!("not a treaty private key file (ID.key from `treaty key gen`): {e}")
                },
            }
        })?;
        Self::from_file(&file, &p, passphrase)
    }
}

/// The ML-DSA-65 half of a key file: `rest` is its secret key (empty when the member is
/// classical only), paired with the public key the file publishes.
fn ml_dsa_half(
    rest: &[u8],
    public: &KeyFilePublic,
    path: &str,
) -> Result<Option<(mldsa65::SecretKey, mldsa65::PublicKey)>, KeyError> {
    let bad = |reason: &str| KeyError::KeyFile {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let sk = mldsa65::SecretKey::from_bytes(rest)
        .map_err(|_| bad("ml-dsa-65 secret key has the wrong length"))?;
    let pk_b64 = public
        .ml_dsa_65
        .as_deref()
        .ok_or_else(|| bad("ml-dsa-65 secret without its public key"))?;
    let pk =
        mldsa65::PublicKey::from_bytes(&unb64(pk_b64).map_err(|_| bad("ml_dsa_65 is not base64"))?)
            .map_err(|_| bad("ml-dsa-65 public key has the wrong length"))?;
    Ok(Some((sk, pk)))
}

/// The words written into every unencrypted key file.
pub const UNENCRYPTED_WARNING: &str =
    "UNENCRYPTED PRIVATE KEY - DEMO ONLY - anyone who can read this file can sign as this member";

struct KdfParams {
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
}

impl Default for KdfParams {
    /// RFC 9106 §4 second recommended option (64 MiB, 3 passes, 1 lane... with p=1 here
    /// because signers' laptops vary): memory-hard enough for a key file that may be copied.
    fn default() -> Self {
        Self {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

fn derive(
    pass: &str,
    salt: &[u8],
    p: &KdfParams,
    path: &str,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let params = argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32)).map_err(|e| {
        KeyError::KeyFile {
            path: path.to_owned(),
            reason: format!("argon2 parameters: {e}"),
        }
    })?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(pass.as_bytes(), salt, out.as_mut())
        .map_err(|e| KeyError::KeyFile {
            path: path.to_owned(),
            reason: format!("argon2: {e}"),
        })?;
    Ok(out)
}

/// The on-disk private key format (`treaty key gen`). See docs/model.md § Key files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub spec_version: String,
    pub kind: String,
    pub public: KeyFilePublic,
    pub protection: KeyProtection,
    pub secret: String,
}

/// The public half of a key file, in the same shape as a group member entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFilePublic {
    pub member_id: String,
    /// The Ed25519 public key of a software key; exactly one of this and `p256` is present.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub ed25519: Option<String>,
    /// The SEC1-compressed P-256 public key of a TPM-resident key.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub p256: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub ml_dsa_65: Option<String>,
}

impl KeyFilePublic {
    fn aad(&self) -> Vec<u8> {
        // A length-prefixed encoding: unambiguous, so no two public halves share an AAD. A
        // TPM key's has its own prefix (the v1 form of software keys is unchanged).
        let (prefix, classical): (&[u8], &str) = match (&self.ed25519, &self.p256) {
            (_, Some(p)) => (b"treaty/key-file/tpm/v1\0", p),
            (Some(e), None) => (b"treaty/key-file/v1\0", e),
            (None, None) => (b"treaty/key-file/v1\0", ""),
        };
        let mut v = prefix.to_vec();
        for part in [
            self.member_id.as_str(),
            classical,
            self.ml_dsa_65.as_deref().unwrap_or(""),
        ] {
            v.extend_from_slice(&(part.len() as u64).to_be_bytes());
            v.extend_from_slice(part.as_bytes());
        }
        v
    }
}

/// How the secret is protected at rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "scheme", deny_unknown_fields)]
pub enum KeyProtection {
    #[serde(rename = "none")]
    None { warning: String },
    #[serde(rename = "argon2id+xchacha20poly1305")]
    Argon2idXChaCha20Poly1305 {
        salt: String,
        nonce: String,
        m_cost_kib: u32,
        t_cost: u32,
        p_cost: u32,
    },
    /// The classical key lives in a TPM 2.0; `secret` is the ML-DSA-65 secret key encrypted
    /// (XChaCha20-Poly1305, the public half as associated data) under a 32-byte key the same
    /// TPM keeps sealed. Blobs are the TPM's own marshalled structures, in base64.
    #[serde(rename = "tpm2")]
    Tpm2 {
        /// Where the TPM was when the key was made (`TREATY_TPM_TCTI` overrides it).
        tcti: String,
        /// The parent the blobs load under: [`crate::tpm::PARENT`].
        parent: String,
        signing_public: String,
        signing_private: String,
        seal_public: String,
        seal_private: String,
        nonce: String,
        /// Whether the objects' authorization is the member's passphrase.
        passphrase: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_signatures_verify_and_reject_tampering() {
        let k = SigningKey::generate("alice").unwrap();
        let sigs = k.sign(b"hello").unwrap();
        assert_eq!(sigs.len(), 2);
        for s in &sigs {
            assert!(s.key.verify(b"hello", &s.sig));
            assert!(!s.key.verify(b"hellp", &s.sig));
            let mut bad = s.sig.clone();
            bad[7] ^= 1;
            assert!(!s.key.verify(b"hello", &bad));
            assert!(!s.key.verify(b"hello", &s.sig[..s.sig.len() - 1]));
        }
    }

    #[test]
    fn deterministic_keys_repeat_exactly_and_their_signatures_verify() {
        let a = SigningKey::deterministic("v", &[7; 32]).unwrap();
        let b = SigningKey::deterministic("v", &[7; 32]).unwrap();
        let c = SigningKey::deterministic("v", &[8; 32]).unwrap();
        assert_eq!(a.classical_public(), b.classical_public());
        assert_eq!(a.mldsa_public(), b.mldsa_public());
        assert_ne!(a.classical_public(), c.classical_public());
        assert_ne!(a.mldsa_public(), c.mldsa_public());
        let (sa, sb) = (a.sign(b"m").unwrap(), b.sign(b"m").unwrap());
        assert_eq!(sa.len(), 2);
        for (x, y) in sa.iter().zip(&sb) {
            assert_eq!(x.sig, y.sig);
            // Verified by the production verifier (PQClean for ML-DSA), with our context.
            assert!(x.key.verify(b"m", &x.sig));
            assert!(!x.key.verify(b"n", &x.sig));
        }
        // The PQClean secret derived for it pairs with its public key.
        let pq = mldsa65::detached_sign_ctx(b"m", MLDSA_CONTEXT, &a.mldsa.as_ref().unwrap().0);
        assert!(a.mldsa_public().unwrap().verify(b"m", pq.as_bytes()));
    }

    #[test]
    fn mldsa_signature_with_another_context_is_rejected() {
        let (pk, sk) = mldsa65::keypair();
        let sig = mldsa65::detached_sign_ctx(b"m", b"other-context", &sk);
        let key = PublicKey::mldsa65(pk.as_bytes()).unwrap();
        assert!(!key.verify(b"m", sig.as_bytes()));
        let good = mldsa65::detached_sign_ctx(b"m", MLDSA_CONTEXT, &sk);
        assert!(key.verify(b"m", good.as_bytes()));
    }

    #[test]
    fn encrypted_key_file_round_trips_and_rejects_wrong_passphrase() {
        let k = SigningKey::generate("bob").unwrap();
        let f = k.to_file(Some("correct horse")).unwrap();
        let back = SigningKey::from_file(&f, "bob.key", || Ok("correct horse".into())).unwrap();
        assert_eq!(back.classical_public(), k.classical_public());
        assert_eq!(back.mldsa_public(), k.mldsa_public());
        let err = SigningKey::from_file(&f, "bob.key", || Ok("wrong".into())).unwrap_err();
        assert!(matches!(err, KeyError::Decrypt { .. }));
    }

    #[test]
    fn key_file_with_swapped_public_key_is_rejected() {
        let k = SigningKey::generate("bob").unwrap();
        let other = SigningKey::generate("eve").unwrap();
        let mut f = k.to_file(None).unwrap();
        f.public.ed25519 = Some(b64(&other.classical_public().bytes()));
        assert!(SigningKey::from_file(&f, "k", || Ok(String::new())).is_err());
        let mut f = k.to_file(Some("pw")).unwrap();
        f.public.member_id = "mallory".into();
        assert!(matches!(
            SigningKey::from_file(&f, "k", || Ok("pw".into())),
            Err(KeyError::Decrypt { .. })
        ));
    }

    /// ECDSA P-256 (docs/spec.md § 1.1), table-driven from one honest signature: only raw
    /// r‖s with low S over the exact message, under the SEC1-compressed key, verifies.
    #[test]
    fn p256_signatures_verify_only_in_their_one_strict_form() {
        use p256::elliptic_curve::ops::Neg as _;
        let k = SigningKey::deterministic_p256("tpm-like", &[9; 32]).unwrap();
        let pk = k.classical_public();
        assert_eq!(pk.algorithm(), Algorithm::EcdsaP256);
        assert_eq!(pk.bytes().len(), P256_PUBLIC_LEN);
        let sig = k.sign_classical(b"msg").unwrap();
        assert_eq!(sig.len(), P256_SIG_LEN);
        assert!(pk.verify(b"msg", &sig), "the honest case");
        // Deterministic (RFC 6979): the vectors repeat.
        assert_eq!(sig, k.sign_classical(b"msg").unwrap());
        let parsed = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        let (r, s) = parsed.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, s.as_ref().neg()).unwrap();
        let der = parsed.to_der().as_bytes().to_vec();
        let mut flipped = sig.clone();
        flipped[40] ^= 1;
        let other = SigningKey::deterministic_p256("other", &[10; 32]).unwrap();
        let cases: [(&str, &[u8], Vec<u8>); 6] = [
            (
                "high S (the malleated twin)",
                b"msg",
                high.to_bytes().to_vec(),
            ),
            ("another message", b"msh", sig.clone()),
            ("a flipped bit", b"msg", flipped),
            ("DER instead of raw r||s", b"msg", der),
            ("truncated", b"msg", sig[..63].to_vec()),
            (
                "another key's signature",
                b"msg",
                other.sign_classical(b"msg").unwrap(),
            ),
        ];
        for (what, msg, bad) in cases {
            assert!(!pk.verify(msg, &bad), "{what} must not verify");
        }
        // Keys: compressed only, on the curve.
        let compressed = pk.bytes();
        assert!(PublicKey::p256(&compressed).is_ok());
        let PublicKey::P256(vk) = &pk else { panic!() };
        let uncompressed = vk.to_encoded_point(false).as_bytes().to_vec();
        assert!(PublicKey::p256(&uncompressed).is_err(), "uncompressed");
        let mut prefix = compressed.clone();
        prefix[0] = 0x04;
        assert!(matches!(
            PublicKey::p256(&prefix),
            Err(KeyError::P256NonCanonical)
        ));
        let mut off = compressed.clone();
        off[1..].fill(0xff);
        assert!(PublicKey::p256(&off).is_err(), "x beyond the field");
        // A P-256 key is never written to a software key file.
        assert!(k.to_file(None).is_err());
    }

    #[test]
    fn weak_and_malformed_ed25519_keys_are_refused() {
        // The identity point (small order).
        let mut id = [0u8; 32];
        id[0] = 1;
        assert!(matches!(
            PublicKey::ed25519(&id),
            Err(KeyError::Ed25519Weak)
        ));
        assert!(PublicKey::ed25519(&[0u8; 31]).is_err());
        assert!(PublicKey::mldsa65(&[0u8; 10]).is_err());
    }

    #[test]
    fn non_canonical_s_is_rejected() {
        // RFC 8032 §5.1.7: S must be < L. S + L satisfies the group equation but must be refused.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let k = SigningKey::generate("a").unwrap();
        let made = &k.sign(b"msg").unwrap()[0];
        assert!(made.key.verify(b"msg", &made.sig));
        let mut sig = made.sig.clone();
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert!(
            sig[63] & 0xe0 == 0 || carry == 0,
            "S + L fits in 255 bits for a reduced S"
        );
        assert!(!made.key.verify(b"msg", &sig));
    }

    #[test]
    fn non_canonical_public_key_encoding_is_refused() {
        // y = p + 1 (non-canonical encoding of y = 1, a small-order point); also y >= p generally.
        let mut enc = [0xffu8; 32];
        enc[0] = 0xee;
        enc[31] = 0x7f;
        assert!(PublicKey::ed25519(&enc).is_err());
    }

    #[test]
    fn key_id_is_sha256_of_public_bytes() {
        let k = SigningKey::generate("a").unwrap();
        let pk = k.classical_public();
        assert_eq!(pk.key_id(), sha256_hex(&pk.bytes()));
        assert!(!format!("{pk:?}").contains(&b64(&pk.bytes())));
    }
}
