//! TPM 2.0-resident member keys (docs/security.md § TPM-resident keys, docs/spec.md § 1.1).
//!
//! Owns talking to the TPM: creating a member's ECDSA P-256 key inside it, sealing the key that
//! encrypts the member's ML-DSA-65 half to it, loading both again to sign, and turning the
//! TPM's answers into errors an operator can act on. It never decides what a signature is worth
//! (that is [`crate::verify`]) and never falls back to software: a TPM that is absent, locked
//! out, or holds another key is an error.
//!
//! Both objects are children of the owner hierarchy's storage root key, re-derived on every use
//! from the TCG template for an ECC P-256 SRK (the primary seed makes it the same key each time,
//! so nothing is made persistent in the TPM and no handle is reserved). The blobs the TPM hands
//! back are encrypted under that SRK: on another TPM they do not load. A member's passphrase, when
//! it has one, is the objects' authorization value, so guessing it runs into the TPM's
//! dictionary-attack lockout instead of an offline search.
//!
//! Each signature opens its own connection (a few milliseconds on swtpm, ~50–100 ms on a
//! hardware TPM, which derives the SRK each time); that keeps a [`TpmKey`] `Send + Sync` and
//! never holds the TPM between signatures.

use zeroize::Zeroizing;

/// The TCTI used when neither `--tcti`, `TREATY_TPM_TCTI` nor the key file names one: the
/// kernel's resource manager, which lets several processes share the TPM.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";
/// Whether this build can talk to a TPM (the `tpm` feature).
pub const AVAILABLE: bool = cfg!(feature = "tpm");
/// The environment variable that overrides the TCTI a key file recorded.
pub const TCTI_ENV: &str = "TREATY_TPM_TCTI";
/// The parent every treaty TPM object is created under; recorded in key files so a future
/// parent can be told apart.
pub const PARENT: &str = "owner/ecc-p256-srk";

/// Why the TPM could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TpmError {
    #[error("this build of treaty has no TPM support; build it with `--features tpm` (needs libtss2, Debian: libtss2-dev)")]
    NotBuilt,
    #[error("cannot open the TPM at {tcti:?}: {detail} (is it there, and may this user open it? a software TPM: swtpm:host=127.0.0.1,port=2321; the kernel's: device:/dev/tpmrm0; or set {TCTI_ENV})")]
    Open { tcti: String, detail: String },
    #[error("the TPM at {tcti:?} is in dictionary-attack lockout (too many wrong passphrases): nothing can be signed until the lockout time passes or its owner runs `tpm2_dictionarylockout --clear-lockout`")]
    Lockout { tcti: String },
    #[error(
        "the TPM at {tcti:?} refused the passphrase (each wrong try counts toward its lockout)"
    )]
    BadPassphrase { tcti: String },
    #[error("the TPM at {tcti:?} does not hold this key: its blobs do not load under this TPM's storage key (made on another machine, or the TPM was cleared)")]
    NotThisTpm { tcti: String },
    #[error("the TPM at {tcti:?} holds a different key than the file's public key {expected} (it signed with {got})")]
    WrongKey {
        tcti: String,
        expected: String,
        got: String,
    },
    #[error("TPM at {tcti:?}: {what}: {detail}")]
    Command {
        tcti: String,
        what: &'static str,
        detail: String,
    },
    #[error("{field} is malformed: {detail}")]
    Blob { field: &'static str, detail: String },
    #[error("the key file names the TPM {tcti:?}; a key file may only name the kernel's TPM (device:/dev/tpmrmN or device:/dev/tpmN): set {TCTI_ENV} to use another (a software TPM, say)")]
    RecordedTcti { tcti: String },
    #[error("the TPM at {tcti:?} refused the owner hierarchy's authorization (it has an owner password): treaty creates its storage key with an empty owner authorization")]
    OwnerAuth { tcti: String },
}

/// The TPM-encrypted halves of a member's two TPM objects, as the TPM marshals them.
#[derive(Clone, PartialEq, Eq)]
pub struct TpmBlobs {
    /// TPM2B_PUBLIC of the P-256 signing key.
    pub signing_public: Vec<u8>,
    /// TPM2B_PRIVATE of the P-256 signing key (encrypted under the SRK).
    pub signing_private: Vec<u8>,
    /// TPM2B_PUBLIC of the sealed object holding the ML-DSA half's encryption key.
    pub seal_public: Vec<u8>,
    /// TPM2B_PRIVATE of that sealed object.
    pub seal_private: Vec<u8>,
}

/// A P-256 key inside a TPM, with what is needed to load it again.
pub struct TpmKey {
    path: String,
    tcti: String,
    blobs: TpmBlobs,
    #[cfg_attr(not(feature = "tpm"), allow(dead_code))]
    auth: Option<Zeroizing<[u8; 32]>>,
    public: p256::ecdsa::VerifyingKey,
}

impl std::fmt::Debug for TpmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpmKey")
            .field("path", &self.path)
            .field("tcti", &self.tcti)
            .finish_non_exhaustive()
    }
}

/// What [`create`] and [`open`] return: the key, and the 32-byte key the TPM keeps sealed (it
/// encrypts the member's ML-DSA-65 half in the key file).
pub struct Opened {
    pub key: TpmKey,
    pub sealed: Zeroizing<[u8; 32]>,
}

/// The TCTI to use: `TREATY_TPM_TCTI` when set, else the one given (recorded in the key file
/// or passed as `--tcti`), else [`DEFAULT_TCTI`].
pub fn tcti(given: Option<&str>) -> String {
    match std::env::var(TCTI_ENV) {
        Ok(v) if !v.is_empty() => v,
        _ => given.unwrap_or(DEFAULT_TCTI).to_owned(),
    }
}

/// The TCTI for a key file: `TREATY_TPM_TCTI` when set; else the file's recorded TCTI, but only
/// the kernel's TPM devices (`device:/dev/tpmN`, `device:/dev/tpmrmN`). Anything else a file
/// names — a software TPM, even on loopback, a device path elsewhere — is refused: whoever can
/// edit the file could point it at a TPM emulator of their own (any local user can run one on a
/// loopback port) and collect the authorization value, sent in a plain password session, to
/// guess the passphrase offline. Another TPM is named by the operator (`TREATY_TPM_TCTI`, or
/// `--tcti` at `key gen`), never by the file.
pub fn tcti_for_file(recorded: &str) -> Result<String, TpmError> {
    if let Ok(v) = std::env::var(TCTI_ENV) {
        if !v.is_empty() {
            return Ok(v);
        }
    }
    if local_tcti(recorded) {
        Ok(recorded.to_owned())
    } else {
        Err(TpmError::RecordedTcti {
            tcti: recorded.to_owned(),
        })
    }
}

/// A TCTI a key file may name: the kernel's TPM device or resource manager, nothing else.
fn local_tcti(tcti: &str) -> bool {
    let Some(dev) = tcti.strip_prefix("device:/dev/") else {
        return false;
    };
    let n = dev
        .strip_prefix("tpmrm")
        .or_else(|| dev.strip_prefix("tpm"))
        .unwrap_or("");
    !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit())
}

/// The TPM authorization value for a passphrase: a domain-separated SHA-256, because an auth
/// value is at most the name algorithm's digest size (32 bytes) and passphrases are longer.
fn auth_of(passphrase: Option<&str>) -> Option<Zeroizing<[u8; 32]>> {
    use sha2::Digest as _;
    passphrase.map(|p| {
        let mut h = sha2::Sha256::new();
        h.update(b"treaty/tpm-auth/v1\0");
        h.update(p.as_bytes());
        Zeroizing::new(h.finalize().into())
    })
}

/// A P-256 key's key id as [`crate::crypto`] defines it (SHA-256 of the compressed point), for
/// errors; computed here so this module needs nothing from the one that uses it.
#[cfg_attr(not(feature = "tpm"), allow(dead_code))]
fn key_id(k: &p256::ecdsa::VerifyingKey) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(k.to_encoded_point(true).as_bytes()))
}

/// Makes a raw ECDSA signature (r, s as the TPM returns them, big-endian, possibly shorter than
/// 32 bytes) into the 64-byte low-S form treaty verifies, checked against `public`.
#[cfg_attr(not(feature = "tpm"), allow(dead_code))]
fn low_s(
    tcti: &str,
    r: &[u8],
    s: &[u8],
    msg: &[u8],
    public: &p256::ecdsa::VerifyingKey,
) -> Result<Vec<u8>, TpmError> {
    use p256::ecdsa::signature::Verifier as _;
    let pad = |v: &[u8]| -> Option<[u8; 32]> {
        let v = &v[v.iter().take_while(|b| **b == 0).count()..];
        let mut out = [0u8; 32];
        out.get_mut(32usize.checked_sub(v.len())?..)?
            .copy_from_slice(v);
        Some(out)
    };
    let bad = |detail: &str| TpmError::Command {
        tcti: tcti.to_owned(),
        what: "sign",
        detail: detail.to_owned(),
    };
    let (Some(r), Some(s)) = (pad(r), pad(s)) else {
        return Err(bad("the signature's r or s is longer than 32 bytes"));
    };
    let sig = p256::ecdsa::Signature::from_scalars(r, s)
        .map_err(|_| bad("the signature's r or s is out of range"))?;
    let sig = sig.normalize_s().unwrap_or(sig);
    if public.verify(msg, &sig).is_err() {
        return Err(TpmError::Command {
            tcti: tcti.to_owned(),
            what: "sign",
            detail: format!(
                "the TPM's signature does not verify under the key it holds ({}): a faulty TPM, or one that holds another key",
                key_id(public)
            ),
        });
    }
    Ok(sig.to_bytes().to_vec())
}

impl TpmKey {
    /// The P-256 public key.
    pub fn public(&self) -> &p256::ecdsa::VerifyingKey {
        &self.public
    }

    /// The key file this key was read from (for errors).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The TCTI this key is used through.
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// The blobs to write into a key file.
    pub fn blobs(&self) -> &TpmBlobs {
        &self.blobs
    }

    /// Signs SHA-256 of `msg` inside the TPM; raw r‖s with low S, verified against the key's
    /// public half before it is returned.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, TpmError> {
        imp::sign(self, msg)
    }
}

/// Creates a member key in the TPM at `tcti`: a P-256 signing key and a sealed random 32-byte
/// key, both under the owner SRK, both bound to `passphrase` when given.
pub fn create(tcti: &str, passphrase: Option<&str>) -> Result<Opened, TpmError> {
    imp::create(tcti, auth_of(passphrase))
}

/// Loads a key file's TPM objects: checks the signing key is the one `public` names (a test
/// signature) and unseals the ML-DSA half's encryption key.
pub fn open(
    path: &str,
    tcti: &str,
    blobs: TpmBlobs,
    passphrase: Option<&str>,
    public: p256::ecdsa::VerifyingKey,
) -> Result<Opened, TpmError> {
    imp::open(path, tcti, blobs, auth_of(passphrase), public)
}

#[cfg(not(feature = "tpm"))]
mod imp {
    use super::*;

    pub(super) fn sign(_: &TpmKey, _: &[u8]) -> Result<Vec<u8>, TpmError> {
        Err(TpmError::NotBuilt)
    }
    pub(super) fn create(_: &str, _: Option<Zeroizing<[u8; 32]>>) -> Result<Opened, TpmError> {
        Err(TpmError::NotBuilt)
    }
    pub(super) fn open(
        _: &str,
        _: &str,
        _: TpmBlobs,
        _: Option<Zeroizing<[u8; 32]>>,
        _: p256::ecdsa::VerifyingKey,
    ) -> Result<Opened, TpmError> {
        Err(TpmError::NotBuilt)
    }
}

#[cfg(feature = "tpm")]
mod imp {
    use super::*;
    use std::str::FromStr as _;
    use tss_esapi::{
        attributes::ObjectAttributesBuilder,
        constants::response_code::Tss2ResponseCodeKind,
        handles::{KeyHandle, ObjectHandle},
        interface_types::{
            algorithm::{HashingAlgorithm, PublicAlgorithm},
            ecc::EccCurve,
            resource_handles::Hierarchy,
            session_handles::AuthSession,
        },
        structures::{
            Auth, Digest, EccScheme, HashScheme, HashcheckTicket, KeyedHashScheme, Private, Public,
            PublicBuilder, PublicEccParametersBuilder, PublicKeyedHashParameters, SensitiveData,
            Signature, SignatureScheme, SymmetricDefinitionObject,
        },
        tcti_ldr::TctiNameConf,
        traits::{Marshall, UnMarshall},
        Context,
    };

    /// What a TSS error means to an operator.
    fn classify(tcti: &str, what: &'static str, e: tss_esapi::Error) -> TpmError {
        let t = tcti.to_owned();
        if let tss_esapi::Error::Tss2Error(rc) = e {
            match rc.kind() {
                Some(Tss2ResponseCodeKind::Lockout) => return TpmError::Lockout { tcti: t },
                Some(Tss2ResponseCodeKind::AuthFail | Tss2ResponseCodeKind::BadAuth)
                    if what == "create the storage root key" =>
                {
                    return TpmError::OwnerAuth { tcti: t }
                }
                Some(Tss2ResponseCodeKind::AuthFail | Tss2ResponseCodeKind::BadAuth) => {
                    return TpmError::BadPassphrase { tcti: t }
                }
                Some(Tss2ResponseCodeKind::Integrity) if what == "load" => {
                    return TpmError::NotThisTpm { tcti: t }
                }
                _ => {}
            }
        }
        TpmError::Command {
            tcti: t,
            what,
            detail: e.to_string(),
        }
    }

    fn connect(tcti: &str) -> Result<Context, TpmError> {
        let open = |detail: String| TpmError::Open {
            tcti: tcti.to_owned(),
            detail,
        };
        let conf = TctiNameConf::from_str(tcti).map_err(|e| open(e.to_string()))?;
        let mut ctx = Context::new(conf).map_err(|e| open(e.to_string()))?;
        // Objects are authorised with their auth value in a password session.
        ctx.set_sessions((Some(AuthSession::Password), None, None));
        Ok(ctx)
    }

    /// The TCG storage root key template for ECC P-256 (TCG TPM v2.0 Provisioning Guidance,
    /// § 7.5.1): restricted decryption, AES-128-CFB for its children.
    fn srk_template() -> Result<Public, tss_esapi::Error> {
        let attrs = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_no_da(true)
            .with_restricted(true)
            .with_decrypt(true)
            .build()?;
        PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attrs)
            .with_ecc_parameters(
                PublicEccParametersBuilder::new_restricted_decryption_key(
                    SymmetricDefinitionObject::AES_128_CFB,
                    EccCurve::NistP256,
                )
                .build()?,
            )
            .with_ecc_unique_identifier(Default::default())
            .build()
    }

    /// An unrestricted ECDSA-SHA256 P-256 signing key that never leaves the TPM (fixedTPM,
    /// fixedParent, sensitiveDataOrigin) and is subject to dictionary-attack protection.
    fn signing_template() -> Result<Public, tss_esapi::Error> {
        let attrs = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_sign_encrypt(true)
            .build()?;
        PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attrs)
            .with_ecc_parameters(
                PublicEccParametersBuilder::new_unrestricted_signing_key(
                    EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
                    EccCurve::NistP256,
                )
                .build()?,
            )
            .with_ecc_unique_identifier(Default::default())
            .build()
    }

    /// A sealed data object (keyed hash, no scheme): the TPM returns its data only to Unseal.
    fn sealed_template() -> Result<Public, tss_esapi::Error> {
        let attrs = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_user_with_auth(true)
            .build()?;
        PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::KeyedHash)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attrs)
            .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
            .with_keyed_hash_unique_identifier(Default::default())
            .build()
    }

    fn srk(ctx: &mut Context, tcti: &str) -> Result<KeyHandle, TpmError> {
        let t = srk_template().map_err(|e| classify(tcti, "srk template", e))?;
        ctx.create_primary(Hierarchy::Owner, t, None, None, None, None)
            .map(|r| r.key_handle)
            .map_err(|e| classify(tcti, "create the storage root key", e))
    }

    fn public_point(tcti: &str, public: &Public) -> Result<p256::ecdsa::VerifyingKey, TpmError> {
        let Public::Ecc { unique, .. } = public else {
            return Err(TpmError::Blob {
                field: "signing_public",
                detail: "not an ECC key".into(),
            });
        };
        let (x, y) = (unique.x().value(), unique.y().value());
        if x.len() > 32 || y.len() > 32 {
            return Err(TpmError::Command {
                tcti: tcti.to_owned(),
                what: "read the public key",
                detail: "coordinate longer than 32 bytes".into(),
            });
        }
        let mut sec1 = vec![0x04];
        sec1.extend(std::iter::repeat_n(0, 32 - x.len()));
        sec1.extend_from_slice(x);
        sec1.extend(std::iter::repeat_n(0, 32 - y.len()));
        sec1.extend_from_slice(y);
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| TpmError::Command {
            tcti: tcti.to_owned(),
            what: "read the public key",
            detail: "not a P-256 point".into(),
        })
    }

    fn set_auth(
        ctx: &mut Context,
        tcti: &str,
        h: ObjectHandle,
        auth: &Option<Zeroizing<[u8; 32]>>,
    ) -> Result<(), TpmError> {
        if let Some(a) = auth {
            let a = Auth::try_from(a.to_vec()).map_err(|e| classify(tcti, "auth", e))?;
            ctx.tr_set_auth(h, a)
                .map_err(|e| classify(tcti, "set the auth value", e))?;
        }
        Ok(())
    }

    /// Loads an object's blobs under `parent`, records it for flushing and sets its
    /// authorization value.
    #[allow(clippy::too_many_arguments)]
    fn load(
        ctx: &mut Context,
        tcti: &str,
        parent: KeyHandle,
        (public, private): (&[u8], &[u8]),
        field: &'static str,
        auth: &Option<Zeroizing<[u8; 32]>>,
        loaded: &mut Vec<ObjectHandle>,
    ) -> Result<(KeyHandle, Public), TpmError> {
        let pubs = Public::unmarshall(public).map_err(|e| TpmError::Blob {
            field,
            detail: e.to_string(),
        })?;
        let priv_ = Private::try_from(private.to_vec()).map_err(|e| TpmError::Blob {
            field,
            detail: e.to_string(),
        })?;
        let h = ctx
            .load(parent, priv_, pubs.clone())
            .map_err(|e| classify(tcti, "load", e))?;
        loaded.push(h.into());
        set_auth(ctx, tcti, h.into(), auth)?;
        Ok((h, pubs))
    }

    /// Signs `msg` with the loaded key `h` and returns the low-S raw signature, checked
    /// against `public`.
    fn sign_checked(
        ctx: &mut Context,
        tcti: &str,
        h: KeyHandle,
        msg: &[u8],
        public: &p256::ecdsa::VerifyingKey,
    ) -> Result<Vec<u8>, TpmError> {
        let (r, s) = tpm_sign(ctx, tcti, h, msg)?;
        low_s(tcti, &r, &s, msg, public)
    }

    fn tpm_sign(
        ctx: &mut Context,
        tcti: &str,
        key: KeyHandle,
        msg: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), TpmError> {
        use sha2::Digest as _;
        let digest = Digest::try_from(sha2::Sha256::digest(msg).to_vec())
            .map_err(|e| classify(tcti, "digest", e))?;
        // An unrestricted key signs any digest: the null ticket (TPM 2.0 Part 2 § 10.7.6).
        let ticket = HashcheckTicket::try_from(tss_esapi::tss2_esys::TPMT_TK_HASHCHECK {
            tag: tss_esapi::constants::tss::TPM2_ST_HASHCHECK,
            hierarchy: tss_esapi::constants::tss::TPM2_RH_NULL,
            digest: Default::default(),
        })
        .map_err(|e| classify(tcti, "ticket", e))?;
        let sig = ctx
            .sign(
                key,
                digest,
                SignatureScheme::EcDsa {
                    hash_scheme: HashScheme::new(HashingAlgorithm::Sha256),
                },
                ticket,
            )
            .map_err(|e| classify(tcti, "sign", e))?;
        let Signature::EcDsa(s) = sig else {
            return Err(TpmError::Command {
                tcti: tcti.to_owned(),
                what: "sign",
                detail: "the TPM answered with a signature that is not ECDSA".into(),
            });
        };
        Ok((
            s.signature_r().value().to_vec(),
            s.signature_s().value().to_vec(),
        ))
    }

    /// Runs `f` with a connection and the SRK, flushing every transient object afterwards (the
    /// TPM has only a few slots, and a process that dies leaves the resource manager to clean).
    fn with_srk<T>(
        tcti: &str,
        f: impl FnOnce(&mut Context, KeyHandle, &mut Vec<ObjectHandle>) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let mut ctx = connect(tcti)?;
        let srk = srk(&mut ctx, tcti)?;
        let mut loaded = vec![srk.into()];
        let out = f(&mut ctx, srk, &mut loaded);
        for h in loaded.into_iter().rev() {
            let _ = ctx.flush_context(h);
        }
        out
    }

    pub(super) fn create(
        tcti: &str,
        auth: Option<Zeroizing<[u8; 32]>>,
    ) -> Result<Opened, TpmError> {
        with_srk(tcti, |ctx, srk, loaded| {
            let tpm_auth = |a: &Option<Zeroizing<[u8; 32]>>| -> Result<Option<Auth>, TpmError> {
                a.as_ref()
                    .map(|a| Auth::try_from(a.to_vec()))
                    .transpose()
                    .map_err(|e| classify(tcti, "auth", e))
            };
            let t = signing_template().map_err(|e| classify(tcti, "signing template", e))?;
            let made = ctx
                .create(srk, t, tpm_auth(&auth)?, None, None, None)
                .map_err(|e| classify(tcti, "create the signing key", e))?;
            let public = public_point(tcti, &made.out_public)?;
            let mut secret = Zeroizing::new([0u8; 32]);
            getrandom::fill(secret.as_mut()).map_err(|e| TpmError::Command {
                tcti: tcti.to_owned(),
                what: "randomness",
                detail: e.to_string(),
            })?;
            let data = SensitiveData::try_from(secret.to_vec())
                .map_err(|e| classify(tcti, "sealed data", e))?;
            let st = sealed_template().map_err(|e| classify(tcti, "sealed template", e))?;
            let sealed = ctx
                .create(srk, st, tpm_auth(&auth)?, Some(data), None, None)
                .map_err(|e| classify(tcti, "seal", e))?;
            let marshal = |p: &Public, field| {
                p.marshall().map_err(|e| TpmError::Blob {
                    field,
                    detail: e.to_string(),
                })
            };
            let blobs = TpmBlobs {
                signing_public: marshal(&made.out_public, "signing_public")?,
                signing_private: made.out_private.value().to_vec(),
                seal_public: marshal(&sealed.out_public, "seal_public")?,
                seal_private: sealed.out_private.value().to_vec(),
            };
            // Prove the new key signs before anything is written.
            let pair = (&blobs.signing_public[..], &blobs.signing_private[..]);
            let (h, _) = load(ctx, tcti, srk, pair, "signing", &auth, loaded)?;
            sign_checked(ctx, tcti, h, b"treaty key check", &public)?;
            Ok(Opened {
                key: TpmKey {
                    path: "<new key>".into(),
                    tcti: tcti.to_owned(),
                    blobs,
                    auth,
                    public,
                },
                sealed: secret,
            })
        })
    }

    pub(super) fn open(
        path: &str,
        tcti: &str,
        blobs: TpmBlobs,
        auth: Option<Zeroizing<[u8; 32]>>,
        public: p256::ecdsa::VerifyingKey,
    ) -> Result<Opened, TpmError> {
        with_srk(tcti, |ctx, srk, loaded| {
            let pair = (&blobs.signing_public[..], &blobs.signing_private[..]);
            let (h, pubs) = load(ctx, tcti, srk, pair, "signing", &auth, loaded)?;
            let held = public_point(tcti, &pubs)?;
            if held != public {
                return Err(TpmError::WrongKey {
                    tcti: tcti.to_owned(),
                    expected: key_id(&public),
                    got: key_id(&held),
                });
            }
            sign_checked(ctx, tcti, h, b"treaty key check", &public)?;
            let pair = (&blobs.seal_public[..], &blobs.seal_private[..]);
            let (sh, _) = load(ctx, tcti, srk, pair, "seal", &auth, loaded)?;
            let data = ctx
                .unseal(sh.into())
                .map_err(|e| classify(tcti, "unseal", e))?;
            let sealed: [u8; 32] = data.value().try_into().map_err(|_| TpmError::Blob {
                field: "seal",
                detail: "the sealed key is not 32 bytes".into(),
            })?;
            Ok(Opened {
                key: TpmKey {
                    path: path.to_owned(),
                    tcti: tcti.to_owned(),
                    blobs,
                    auth,
                    public,
                },
                sealed: Zeroizing::new(sealed),
            })
        })
    }

    pub(super) fn sign(k: &TpmKey, msg: &[u8]) -> Result<Vec<u8>, TpmError> {
        with_srk(&k.tcti, |ctx, srk, loaded| {
            let pair = (&k.blobs.signing_public[..], &k.blobs.signing_private[..]);
            let (h, _) = load(ctx, &k.tcti, srk, pair, "signing", &k.auth, loaded)?;
            sign_checked(ctx, &k.tcti, h, msg, &k.public)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file may only name the kernel's TPM; anything else needs the operator's
    /// `TREATY_TPM_TCTI`.
    #[test]
    fn a_key_file_names_only_a_local_tpm() {
        for (tcti, local) in [
            ("device:/dev/tpmrm0", true),
            ("device:/dev/tpm0", true),
            ("device:/dev/tpmrm12", true),
            ("swtpm:host=127.0.0.1,port=2321", false),
            ("swtpm:host=localhost,port=2321", false),
            ("swtpm:", false),
            ("mssim:host=::1,port=2321", false),
            ("device:/dev/pts/3", false),
            ("device:/dev/shm/x", false),
            ("device:/dev/../tmp/x", false),
            ("device:/dev/tpmrm0/../../tmp/x", false),
            ("device:/dev/tpm", false),
            ("swtpm:host=tpm.attacker.example,port=2321", false),
            ("swtpm:host=10.0.0.7,port=2321", false),
            ("swtpm:host=127.0.0.1,port=99999", false),
            ("swtpm:host=127.0.0.1,host=evil,port=1", false),
            ("device:/tmp/sock", false),
            ("tabrmd:bus_name=com.example", false),
            ("libtpms", false),
            ("", false),
        ] {
            assert_eq!(local_tcti(tcti), local, "{tcti}");
        }
    }
}
