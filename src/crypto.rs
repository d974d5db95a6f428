//! Hybrid signing keys: Ed25519 (RFC 8032) and ML-DSA-65 (FIPS 204).
//!
//! Owns key encodings, key ids, signature verification with the strictness the security model
//! needs, and private keys at rest. It never decides *whether a signature counts* — that is
//! threshold logic in [`crate::verify`] — and never prints key bytes (`Debug` is redacted).
//!
//! - Ed25519 verification is `verify_strict` (rejects non-canonical S, small-order A and R).
//!   Public keys are additionally refused at load when weak (small order) or not canonically
//!   encoded, so a key that could never verify strictly is a configuration error, not a silent
//!   zero.
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
    #[serde(rename = "ml-dsa-65")]
    MlDsa65,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::MlDsa65 => "ml-dsa-65",
        })
    }
}

/// A public verification key. Closed enum with one `verify` match, so adding an algorithm is
/// a compile error everywhere it must be considered.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
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
            PublicKey::MlDsa65(_) => Algorithm::MlDsa65,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(k) => k.to_bytes().to_vec(),
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

/// A member's hybrid signing key: always Ed25519, plus ML-DSA-65.
pub struct SigningKey {
    pub member_id: String,
    ed: ed25519_dalek::SigningKey,
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
            ed: ed25519_dalek::SigningKey::from_bytes(&seed),
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
            ed: ed25519_dalek::SigningKey::from_bytes(&ed_seed),
            mldsa: Some((sk, pk)),
            mldsa_seed: Some(xi),
        })
    }

    pub fn ed25519_public(&self) -> PublicKey {
        PublicKey::Ed25519(self.ed.verifying_key())
    }

    pub fn mldsa_public(&self) -> Option<PublicKey> {
        self.mldsa
            .as_ref()
            .map(|(_, pk)| PublicKey::MlDsa65(pk.as_bytes().into()))
    }

    /// An Ed25519 signature alone (for formats that carry only Ed25519, such as C2SP notes).
    pub fn sign_ed25519(&self, msg: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        self.ed.sign(msg).to_bytes().to_vec()
    }

    /// Signs `msg` with every key this member holds (Ed25519 first).
    pub fn sign(&self, msg: &[u8]) -> Vec<MadeSignature> {
        use ed25519_dalek::Signer as _;
        let mut out = vec![MadeSignature {
            key: self.ed25519_public(),
            sig: self.ed.sign(msg).to_bytes().to_vec(),
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
        out
    }

    fn secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(32 + MLDSA65_SECRET_LEN));
        v.extend_from_slice(&self.ed.to_bytes());
        if let Some((sk, _)) = &self.mldsa {
            v.extend_from_slice(sk.as_bytes());
        }
        v
    }

    /// Serialises the key for storage. With `passphrase`, encrypted (Argon2id +
    /// XChaCha20-Poly1305); without, plain and loudly marked.
    pub fn to_file(&self, passphrase: Option<&str>) -> Result<KeyFile, KeyError> {
        let public = KeyFilePublic {
            member_id: self.member_id.clone(),
            ed25519: b64(&self.ed25519_public().bytes()),
            ml_dsa_65: self.mldsa_public().map(|k| b64(&k.bytes())),
        };
        let secret = self.secret_bytes();
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
        let secret: Zeroizing<Vec<u8>> = match &file.protection {
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
        let mldsa = if rest.is_empty() {
            None
        } else {
            let sk = mldsa65::SecretKey::from_bytes(rest)
                .map_err(|_| bad("ml-dsa-65 secret key has the wrong length"))?;
            let pk_b64 = file
                .public
                .ml_dsa_65
                .as_deref()
                .ok_or_else(|| bad("ml-dsa-65 secret without its public key"))?;
            let pk = mldsa65::PublicKey::from_bytes(
                &unb64(pk_b64).map_err(|_| bad("ml_dsa_65 is not base64"))?,
            )
            .map_err(|_| bad("ml-dsa-65 public key has the wrong length"))?;
            Some((sk, pk))
        };
        let key = Self {
            member_id: file.public.member_id.clone(),
            ed,
            mldsa,
            mldsa_seed: None,
        };
        // The stored public half must be the one the secret derives (Ed25519) and must pair
        // with the secret (ML-DSA: a test signature), or the file was tampered with.
        if b64(&key.ed25519_public().bytes()) != file.public.ed25519 {
            return Err(bad("ed25519 public key does not match the secret key"));
        }
        if let (Some(pk), Some(made)) = (key.mldsa_public(), key.sign(b"treaty key check").get(1)) {
            if !pk.verify(b"treaty key check", &made.sig) {
                return Err(bad("ml-dsa-65 public key does not match the secret key"));
            }
        }
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
                v.get("ed25519").is_some() && v.get("id").is_some() && v.get("secret").is_none()
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
    pub ed25519: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_dsa_65: Option<String>,
}

impl KeyFilePublic {
    fn aad(&self) -> Vec<u8> {
        // A length-prefixed encoding: unambiguous, so no two public halves share an AAD.
        let mut v = b"treaty/key-file/v1\0".to_vec();
        for part in [
            self.member_id.as_str(),
            self.ed25519.as_str(),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_signatures_verify_and_reject_tampering() {
        let k = SigningKey::generate("alice").unwrap();
        let sigs = k.sign(b"hello");
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
        assert_eq!(a.ed25519_public(), b.ed25519_public());
        assert_eq!(a.mldsa_public(), b.mldsa_public());
        assert_ne!(a.ed25519_public(), c.ed25519_public());
        assert_ne!(a.mldsa_public(), c.mldsa_public());
        let (sa, sb) = (a.sign(b"m"), b.sign(b"m"));
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
        assert_eq!(back.ed25519_public(), k.ed25519_public());
        assert_eq!(back.mldsa_public(), k.mldsa_public());
        let err = SigningKey::from_file(&f, "bob.key", || Ok("wrong".into())).unwrap_err();
        assert!(matches!(err, KeyError::Decrypt { .. }));
    }

    #[test]
    fn key_file_with_swapped_public_key_is_rejected() {
        let k = SigningKey::generate("bob").unwrap();
        let other = SigningKey::generate("eve").unwrap();
        let mut f = k.to_file(None).unwrap();
        f.public.ed25519 = b64(&other.ed25519_public().bytes());
        assert!(SigningKey::from_file(&f, "k", || Ok(String::new())).is_err());
        let mut f = k.to_file(Some("pw")).unwrap();
        f.public.member_id = "mallory".into();
        assert!(matches!(
            SigningKey::from_file(&f, "k", || Ok("pw".into())),
            Err(KeyError::Decrypt { .. })
        ));
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
        let made = &k.sign(b"msg")[0];
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
        let pk = k.ed25519_public();
        assert_eq!(pk.key_id(), sha256_hex(&pk.bytes()));
        assert!(!format!("{pk:?}").contains(&b64(&pk.bytes())));
    }
}
