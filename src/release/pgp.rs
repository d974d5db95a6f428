//! OpenPGP detached signatures over a release archive (`NAME.tar.gz.asc`, RFC 9580 §10.4),
//! so anyone with stock `gpg --verify` can check a release without treaty.
//!
//! Owns signing with an OpenPGP secret key through `pgp` (rpgp, pure Rust), signing through
//! the user's own `gpg` (`--gpg-program`, as git does, for keys on hardware tokens), key
//! generation, and checking an `.asc` against the OpenPGP keys the release group's members
//! publish. Keys are v4 with the legacy EdDSA algorithm (22): GnuPG 2.2, still what stable
//! distributions ship, rejects v6 keys and the RFC 9580 Ed25519 algorithm (27). It never
//! reads an archive into memory: signing and verifying stream it.

use std::path::Path;
use std::process::{Command, Stdio};

use pgp::composed::{
    ArmorOptions, Deserializable, DetachedSignature, EncryptionCaps, KeyType,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};

use crate::governance::model::MemberEntry;

/// Why an OpenPGP operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgpError {
    #[error("{path}: {reason}")]
    Key { path: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("OpenPGP: {0}")]
    Pgp(String),
    #[error("{program} failed: {reason}")]
    Gpg { program: String, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PgpError + '_ {
    move |source| PgpError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A new v4 EdDSA (legacy, algorithm 22) signing key for `uid`: (secret, public), both
/// ASCII-armoured. The public half goes in the member's `openpgp` field.
pub fn generate(uid: &str) -> Result<(String, String), PgpError> {
    let e = |e: String| PgpError::Pgp(e);
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .can_encrypt(EncryptionCaps::None)
        .primary_user_id(uid.into());
    let params = params.build().map_err(|x| e(x.to_string()))?;
    let secret = params
        .generate(rand::thread_rng())
        .map_err(|x| e(x.to_string()))?;
    let public = SignedPublicKey::from(secret.clone());
    Ok((
        secret
            .to_armored_string(ArmorOptions::default())
            .map_err(|x| e(x.to_string()))?,
        public
            .to_armored_string(ArmorOptions::default())
            .map_err(|x| e(x.to_string()))?,
    ))
}

/// Why an OpenPGP key or signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgpCheckError {
    #[error("this is a secret key; publish only the public key")]
    SecretKey,
    #[error("not an ASCII-armoured OpenPGP public key: {reason}")]
    NotAPublicKey { reason: String },
    #[error("a {version} key: GnuPG 2.2 cannot verify its signatures; use a v4 EdDSA key")]
    NotV4 { version: String },
    #[error("the .asc is not text")]
    NotText,
    #[error("the .asc is not an OpenPGP signature: {reason}")]
    NotASignature { reason: String },
    #[error("{path}: {reason}")]
    Archive { path: String, reason: String },
    #[error("the .asc was made by {member}'s key {fingerprint} but does not verify over {archive} (another file, or altered)")]
    Mismatch {
        member: String,
        fingerprint: String,
        archive: String,
    },
    #[error("the .asc was made by key {issuer} which no release group member publishes")]
    UnknownIssuer { issuer: String },
}

/// Checks that `armored` is an OpenPGP public key (a member's `openpgp` field) and returns
/// its fingerprint; refuses secret keys and keys GnuPG 2.2 cannot verify (v6).
pub fn check_public_key(armored: &str) -> Result<String, PgpCheckError> {
    if armored.contains("PRIVATE KEY BLOCK") {
        return Err(PgpCheckError::SecretKey);
    }
    let (pk, _) =
        SignedPublicKey::from_string(armored).map_err(|e| PgpCheckError::NotAPublicKey {
            reason: e.to_string(),
        })?;
    if pk.version() != pgp::types::KeyVersion::V4 {
        return Err(PgpCheckError::NotV4 {
            version: format!("{:?}", pk.version()),
        });
    }
    Ok(hex::encode(pk.fingerprint().as_bytes()))
}

/// Signs `archive` with the secret key in `key_file` (armoured or binary), streaming it.
pub fn sign_with_key(
    archive: &Path,
    key_file: &Path,
    passphrase: Option<&str>,
) -> Result<String, PgpError> {
    let bytes = std::fs::read(key_file).map_err(io(key_file))?;
    let kerr = |reason: String| PgpError::Key {
        path: key_file.display().to_string(),
        reason,
    };
    let key = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN PGP") => SignedSecretKey::from_string(text)
            .map(|(k, _)| k)
            .map_err(|e| kerr(format!("not an OpenPGP secret key: {e}")))?,
        _ => SignedSecretKey::from_bytes(&bytes[..])
            .map_err(|e| kerr(format!("not an OpenPGP secret key: {e}")))?,
    };
    let pw = passphrase.map_or_else(Password::empty, Password::from);
    let f = std::fs::File::open(archive).map_err(io(archive))?;
    let sig = DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        &key.primary_key,
        &pw,
        HashAlgorithm::Sha256,
        std::io::BufReader::new(f),
    )
    .map_err(|e| {
        kerr(format!(
            "cannot sign (wrong passphrase, or not a signing key?): {e}"
        ))
    })?;
    sig.to_armored_string(ArmorOptions::default())
        .map_err(|e| PgpError::Pgp(e.to_string()))
}

/// Signs `archive` through an external `gpg`-compatible program (`--detach-sign --armor`),
/// which may use a smartcard; `local_user` picks the key.
pub fn sign_with_gpg(
    program: &str,
    archive: &Path,
    local_user: Option<&str>,
) -> Result<String, PgpError> {
    let mut cmd = Command::new(program);
    cmd.args([
        "--batch",
        "--yes",
        "--armor",
        "--detach-sign",
        "--output",
        "-",
    ]);
    if let Some(u) = local_user {
        cmd.args(["--local-user", u]);
    }
    cmd.arg(archive);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PgpError::Gpg {
            program: program.into(),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(PgpError::Gpg {
            program: program.into(),
            reason: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    String::from_utf8(out.stdout).map_err(|e| PgpError::Gpg {
        program: program.into(),
        reason: format!("output is not text: {e}"),
    })
}

/// Checks `asc` over `archive` against the members' published OpenPGP keys; returns the
/// member id and the signing key's fingerprint.
pub fn verify(
    asc: &[u8],
    archive: &Path,
    members: &[MemberEntry],
) -> Result<(String, String), PgpCheckError> {
    let text = std::str::from_utf8(asc).map_err(|_| PgpCheckError::NotText)?;
    let (sig, _) =
        DetachedSignature::from_string(text).map_err(|e| PgpCheckError::NotASignature {
            reason: e.to_string(),
        })?;
    let issuers: Vec<String> = sig
        .signature
        .issuer_fingerprint()
        .iter()
        .map(|f| hex::encode(f.as_bytes()))
        .collect();
    let issuer_ids: Vec<String> = sig
        .signature
        .issuer_key_id()
        .iter()
        .map(|k| hex::encode(k.as_ref()))
        .collect();
    let sig = &sig.signature;
    for m in members {
        let Some(armored) = &m.openpgp else { continue };
        let Ok((pk, _)) = SignedPublicKey::from_string(armored) else {
            continue;
        };
        let named = |fpr: &str, kid: &str| {
            issuers.iter().any(|i| i == fpr) || issuer_ids.iter().any(|i| i == kid)
        };
        let open = || -> Result<std::io::BufReader<std::fs::File>, PgpCheckError> {
            std::fs::File::open(archive)
                .map(std::io::BufReader::new)
                .map_err(|e| PgpCheckError::Archive {
                    path: archive.display().to_string(),
                    reason: e.to_string(),
                })
        };
        let mismatch = |fpr: &str| PgpCheckError::Mismatch {
            member: m.id.clone(),
            fingerprint: fpr.to_owned(),
            archive: archive.display().to_string(),
        };
        let fpr = hex::encode(pk.fingerprint().as_bytes());
        if named(&fpr, &hex::encode(pk.legacy_key_id().as_ref())) {
            return match sig.verify(&pk, open()?) {
                Ok(()) => Ok((m.id.clone(), fpr)),
                Err(_) => Err(mismatch(&fpr)),
            };
        }
        for sk in &pk.public_subkeys {
            let fpr = hex::encode(sk.fingerprint().as_bytes());
            if named(&fpr, &hex::encode(sk.legacy_key_id().as_ref())) {
                return match sig.verify(sk, open()?) {
                    Ok(()) => Ok((m.id.clone(), fpr)),
                    Err(_) => Err(mismatch(&fpr)),
                };
            }
        }
    }
    Err(PgpCheckError::UnknownIssuer {
        issuer: issuers
            .first()
            .or(issuer_ids.first())
            .cloned()
            .unwrap_or_else(|| "(unnamed)".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::model::MemberEntry;

    fn member(id: &str, openpgp: &str) -> MemberEntry {
        MemberEntry {
            id: id.into(),
            ed25519: Some(String::new()),
            p256: None,
            ml_dsa_65: None,
            openpgp: Some(openpgp.into()),
        }
    }

    #[test]
    fn generated_v4_keys_sign_and_verify_and_other_keys_or_files_do_not() {
        let d = tempfile::tempdir().unwrap();
        let (sec, public) = generate("Officer <o@example.invalid>").unwrap();
        let (_, other_public) = generate("Other <x@example.invalid>").unwrap();
        assert!(check_public_key(&public).is_ok());
        assert!(check_public_key(&sec).is_err());
        let key = d.path().join("k.asc");
        std::fs::write(&key, &sec).unwrap();
        let a = d.path().join("a.tar.gz");
        let b = d.path().join("b.tar.gz");
        std::fs::write(&a, b"release a").unwrap();
        std::fs::write(&b, b"release b").unwrap();
        let asc = sign_with_key(&a, &key, None).unwrap();
        assert!(asc.starts_with("-----BEGIN PGP SIGNATURE-----"));
        let (who, _) = verify(asc.as_bytes(), &a, &[member("o", &public)]).unwrap();
        assert_eq!(who, "o");
        assert!(verify(asc.as_bytes(), &b, &[member("o", &public)]).is_err());
        assert!(verify(asc.as_bytes(), &a, &[member("x", &other_public)]).is_err());
        assert!(verify(b"garbage", &a, &[member("o", &public)]).is_err());
    }
}
