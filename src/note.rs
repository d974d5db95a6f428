//! C2SP `signed-note` and `tlog-checkpoint`: the text formats transparency logs (the Go checksum
//! database, Sigstore's Rekor v2) use for signed checkpoints, so that public witnesses can
//! co-sign ours.
//!
//! Owns parsing (bounded, strict), verifier keys (`name+hex(keyid)+base64(type‖key)`, key ID =
//! `SHA-256(name ‖ 0x0A ‖ type ‖ key)[:4]`) of three types — Ed25519 (0x01), ECDSA P-256
//! (0x02, as github.com/transparency-dev/witness signs: how a TPM-resident key signs a
//! checkpoint or a receipt log) and C2SP tlog-cosignature `cosignature/v1` (0x04, what witnesses
//! sign) — signing, cosigning and
//! verifying notes, and the checkpoint body (origin, tree size, base64 root hash, extension
//! lines). It never decides which
//! keys to trust; callers pass the verifier keys they trust.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::crypto::PublicKey;

/// Notes larger than this are refused before parsing.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// More signature lines than this are refused.
pub const MAX_SIGNATURES: usize = 100;
/// Signature algorithm byte for Ed25519 (C2SP signed-note).
const ALG_ED25519: u8 = 0x01;
/// Signature algorithm byte for ECDSA (C2SP signed-note: P-256, key = DER SPKI, key ID =
/// `SHA-256(SPKI)[:4]`, signature = ASN.1 DER over SHA-256 of the text).
const ALG_ECDSA: u8 = 0x02;
/// Signature algorithm byte for a timestamped Ed25519 witness cosignature (C2SP
/// tlog-cosignature, `cosignature/v1`).
const ALG_COSIGNATURE_V1: u8 = 0x04;

/// What a verifier key's signatures are (C2SP signed-note §Signature types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// 0x01: Ed25519 over the note text (how checkpoints, and the cosignatures `treaty audit
    /// cosign` wrote before C2SP tlog-cosignature, are signed).
    Ed25519,
    /// 0x02: ECDSA P-256 over the note text (a TPM-resident member key).
    EcdsaP256,
    /// 0x04: a witness's `cosignature/v1` — a timestamp and an Ed25519 signature over
    /// `cosignature/v1\ntime <timestamp>\n` followed by the note text (C2SP tlog-cosignature).
    CosignatureV1,
}

impl KeyKind {
    fn byte(self) -> u8 {
        match self {
            KeyKind::Ed25519 => ALG_ED25519,
            KeyKind::EcdsaP256 => ALG_ECDSA,
            KeyKind::CosignatureV1 => ALG_COSIGNATURE_V1,
        }
    }

    /// The kind a plain (non-cosignature) note signature by `key` has.
    fn signing(key: &PublicKey) -> Result<Self, NoteError> {
        match key.algorithm() {
            crate::crypto::Algorithm::Ed25519 => Ok(KeyKind::Ed25519),
            crate::crypto::Algorithm::EcdsaP256 => Ok(KeyKind::EcdsaP256),
            crate::crypto::Algorithm::MlDsa65 => Err(NoteError::Key(
                "signed notes carry a classical signature (Ed25519 or ECDSA P-256), not ML-DSA"
                    .into(),
            )),
        }
    }
}

/// The public key bytes a verifier key of `kind` carries after its type byte: the raw key,
/// or for ECDSA the DER SubjectPublicKeyInfo.
fn key_material(kind: KeyKind, key: &PublicKey) -> Result<Vec<u8>, NoteError> {
    match (kind, key) {
        (KeyKind::Ed25519 | KeyKind::CosignatureV1, PublicKey::Ed25519(_)) => Ok(key.bytes()),
        (KeyKind::EcdsaP256, PublicKey::P256(vk)) => {
            use p256::pkcs8::EncodePublicKey as _;
            vk.to_public_key_der()
                .map(|d| d.as_bytes().to_vec())
                .map_err(|e| NoteError::Key(format!("cannot encode the P-256 key: {e}")))
        }
        (KeyKind::CosignatureV1, _) => Err(NoteError::Key(
            "a cosignature/v1 (0x04) key is Ed25519; this key is not".into(),
        )),
        _ => Err(NoteError::Key(format!(
            "a {kind:?} verifier key cannot hold a {} key",
            key.algorithm()
        ))),
    }
}

/// A verifier key's 4-byte key id: `SHA-256(name ‖ 0x0A ‖ type ‖ key)[:4]`, except ECDSA,
/// whose id is the truncated SHA-256 of the SPKI alone (C2SP signed-note § Signature types).
fn kind_key_id(kind: KeyKind, name: &str, material: &[u8]) -> [u8; 4] {
    if kind == KeyKind::EcdsaP256 {
        let d = Sha256::digest(material);
        return [d[0], d[1], d[2], d[3]];
    }
    let mut raw = vec![kind.byte()];
    raw.extend_from_slice(material);
    key_id(name, &raw)
}

/// The message a `cosignature/v1` signs (C2SP tlog-cosignature §Ed25519 signed message).
fn cosigned_message(text: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Why a note, key or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    #[error("note is malformed: {0}")]
    Malformed(String),
    #[error("verifier key is malformed: {0}")]
    Key(String),
    #[error("no signature by a trusted key verifies")]
    Unverified,
    #[error("checkpoint is malformed: {0}")]
    Checkpoint(String),
    /// The key could not sign (a TPM-resident key's TPM failed); the message says why.
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// A signed-note verifier key: Ed25519 (0x01) or a C2SP `cosignature/v1` witness key (0x04).
#[derive(Debug, Clone)]
pub struct VerifierKey {
    pub name: String,
    pub key_id: [u8; 4],
    pub key: PublicKey,
    pub kind: KeyKind,
}

fn key_id(name: &str, alg_and_key: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(alg_and_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('+')
        && name.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

impl VerifierKey {
    /// Parses `name+hex8+base64`.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let bad = |m: &str| NoteError::Key(m.to_owned());
        // Names and key ids never contain '+'; the base64 key may.
        let mut parts = s.trim_end_matches('\n').splitn(3, '+');
        let (Some(name), Some(id), Some(k)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+keyid+key"));
        };
        if !valid_name(name) {
            return Err(bad("bad key name"));
        }
        let raw = b64().decode(k).map_err(|_| bad("key is not base64"))?;
        let (&alg, key) = raw.split_first().ok_or_else(|| bad("empty key"))?;
        let kind = match alg {
            ALG_ED25519 => KeyKind::Ed25519,
            ALG_ECDSA => KeyKind::EcdsaP256,
            ALG_COSIGNATURE_V1 => KeyKind::CosignatureV1,
            _ => {
                return Err(bad(
                    "only Ed25519 (0x01), ECDSA P-256 (0x02) and cosignature/v1 (0x04) keys are supported",
                ))
            }
        };
        let want = hex::decode(id).map_err(|_| bad("key id is not hex"))?;
        let computed = kind_key_id(kind, name, key);
        if want.as_slice() != computed {
            return Err(bad("key id does not match the name and key"));
        }
        let key = if kind == KeyKind::EcdsaP256 {
            use p256::pkcs8::DecodePublicKey as _;
            let vk = p256::ecdsa::VerifyingKey::from_public_key_der(key)
                .map_err(|_| bad("not a P-256 SubjectPublicKeyInfo"))?;
            // One encoding per key: the DER must be the one this key re-encodes to.
            let k = PublicKey::P256(vk);
            if key_material(kind, &k)? != key {
                return Err(bad("P-256 key is not in its canonical DER form"));
            }
            k
        } else {
            PublicKey::ed25519(key).map_err(|e| NoteError::Key(e.to_string()))?
        };
        Ok(Self {
            name: name.to_owned(),
            key_id: computed,
            key,
            kind,
        })
    }

    /// The plain verifier key for a classical public key: Ed25519 (0x01) or ECDSA P-256
    /// (0x02).
    pub fn from_key(name: &str, key: &PublicKey) -> Result<Self, NoteError> {
        Self::of_kind(name, key, KeyKind::signing(key)?)
    }

    /// The verifier key of `kind` for `key` (refused when the kind cannot hold that key).
    pub fn of_kind(name: &str, key: &PublicKey, kind: KeyKind) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key("bad key name".into()));
        }
        let material = key_material(kind, key)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: kind_key_id(kind, name, &material),
            key: key.clone(),
            kind,
        })
    }

    /// Whether `sig` (the signature line's bytes after the key id) is this key's signature of
    /// the note text `text`; for a cosignature, with its timestamp.
    fn verifies(&self, text: &str, sig: &[u8]) -> Option<Option<u64>> {
        match self.kind {
            KeyKind::Ed25519 => self.key.verify(text.as_bytes(), sig).then_some(None),
            KeyKind::EcdsaP256 => {
                use p256::ecdsa::signature::Verifier as _;
                let PublicKey::P256(vk) = &self.key else {
                    return None;
                };
                // Others' 0x02 signers (Go's ecdsa.SignASN1) do not normalise S; both forms
                // verify here, and a key still counts once whatever its lines.
                let sig = p256::ecdsa::Signature::from_der(sig).ok()?;
                vk.verify(text.as_bytes(), &sig).is_ok().then_some(None)
            }
            KeyKind::CosignatureV1 => {
                // struct { u64 timestamp; opaque ed25519_signature[64]; }, big-endian.
                let (ts, sig) = sig.split_first_chunk::<8>()?;
                let ts = u64::from_be_bytes(*ts);
                (sig.len() == 64
                    && ts <= i64::MAX as u64
                    && self.key.verify(&cosigned_message(text, ts), sig))
                .then_some(Some(ts))
            }
        }
    }

    pub fn encode(&self) -> String {
        let mut raw = vec![self.kind.byte()];
        // A verifier key is only ever built through `parse` or `of_kind`, which checked the
        // kind holds the key; the fallback keeps `encode` total.
        raw.extend(key_material(self.kind, &self.key).unwrap_or_else(|_| self.key.bytes()));
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            b64().encode(raw)
        )
    }
}

/// What makes two signature lines one signature, for counting signers: an ECDSA signature's
/// `r` (from it and the text anyone can recover a second public key the same signature
/// verifies under, and its high-S twin verifies too), else the signature bytes. A threshold
/// counts each such identity for one signer only.
pub fn signature_identity(sig: &[u8]) -> Vec<u8> {
    match p256::ecdsa::Signature::from_der(sig) {
        Ok(s) => s.r().to_bytes().to_vec(),
        Err(_) => sig.to_vec(),
    }
}

/// One signature line: (key name, key id, signature bytes).
pub type SignatureLine = (String, [u8; 4], Vec<u8>);

/// A parsed note: its text (what is signed, ending in a newline) and signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<SignatureLine>,
}

impl Note {
    /// Parses a signed note (C2SP signed-note §Format).
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        let bad = |m: &str| NoteError::Malformed(m.to_owned());
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(bad("larger than 1 MiB"));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        if s.contains('\r') || s.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad("control characters"));
        }
        let split = s
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let (text, sigs) = (&s[..=split], &s[split + 2..]);
        if !sigs.ends_with('\n') {
            return Err(bad("does not end with a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs.lines() {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or_else(|| bad("signature line does not start with an em dash"))?;
            let (name, sig) = rest
                .split_once(' ')
                .ok_or_else(|| bad("signature line has no signature"))?;
            if !valid_name(name) {
                return Err(bad("bad signer name"));
            }
            let raw = b64()
                .decode(sig)
                .map_err(|_| bad("signature is not base64"))?;
            if raw.len() < 5 {
                return Err(bad("signature too short"));
            }
            let id = [raw[0], raw[1], raw[2], raw[3]];
            signatures.push((name.to_owned(), id, raw[4..].to_vec()));
            if signatures.len() > MAX_SIGNATURES {
                return Err(bad("too many signatures"));
            }
        }
        if signatures.is_empty() {
            return Err(bad("no signatures"));
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The names of the trusted keys whose signatures verify; error if none does. Signatures
    /// from unknown keys are ignored, as the format requires.
    pub fn verify(&self, trusted: &[VerifierKey]) -> Result<Vec<String>, NoteError> {
        let ok: Vec<String> = self
            .verified(trusted)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        if ok.is_empty() {
            Err(NoteError::Unverified)
        } else {
            Ok(ok)
        }
    }

    /// Each trusted key whose signature verifies, once, with a cosignature's timestamp (the
    /// key id, which commits to the key's kind, picks how a line is checked).
    /// The lines `key` verifies (its name and key id, a valid signature of the text).
    pub fn lines_by<'a>(&'a self, key: &'a VerifierKey) -> impl Iterator<Item = &'a SignatureLine> {
        self.signatures.iter().filter(move |(name, id, sig)| {
            &key.name == name && &key.key_id == id && key.verifies(&self.text, sig).is_some()
        })
    }

    pub fn verified(&self, trusted: &[VerifierKey]) -> Vec<(String, Option<u64>)> {
        let mut ok: Vec<(String, Option<u64>)> = Vec::new();
        for (name, id, sig) in &self.signatures {
            for k in trusted
                .iter()
                .filter(|k| &k.name == name && &k.key_id == id)
            {
                if let Some(ts) = k.verifies(&self.text, sig) {
                    if !ok.iter().any(|(n, _)| n == &k.name) {
                        ok.push((k.name.clone(), ts));
                    }
                }
            }
        }
        ok
    }

    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for (name, id, sig) in &self.signatures {
            let mut raw = id.to_vec();
            raw.extend(sig);
            out.push_str(&format!("\u{2014} {name} {}\n", b64().encode(raw)));
        }
        out
    }
}

/// A `tlog-checkpoint` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a note's text as a checkpoint (C2SP tlog-checkpoint §Note text).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |m: &str| NoteError::Checkpoint(m.to_owned());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("no final newline"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines.next().ok_or_else(|| bad("no size line"))?;
        if size.is_empty()
            || (size.len() > 1 && size.starts_with('0'))
            || !size.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad("size is not a decimal number without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| bad("size out of range"))?;
        let root = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root: [u8; 32] = b64()
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("root hash is not 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    pub fn text(&self) -> String {
        let mut t = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            b64().encode(self.root)
        );
        for e in &self.extensions {
            t.push_str(e);
            t.push('\n');
        }
        t
    }
}

/// Signs `text` (which must end in a newline) as `key` named `name`, returning the note.
pub fn sign(text: &str, name: &str, key: &crate::crypto::SigningKey) -> Result<Note, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end with a newline".into()));
    }
    let vk = VerifierKey::from_key(name, &key.classical_public())?;
    let raw = key
        .sign_classical(text.as_bytes())
        .map_err(|e| NoteError::Sign(e.to_string()))?;
    let sig = match vk.kind {
        KeyKind::EcdsaP256 => p256::ecdsa::Signature::from_slice(&raw)
            .map_err(|e| NoteError::Sign(e.to_string()))?
            .to_der()
            .as_bytes()
            .to_vec(),
        _ => raw,
    };
    Ok(Note {
        text: text.to_owned(),
        signatures: vec![(name.to_owned(), vk.key_id, sig)],
    })
}

/// A witness's C2SP `cosignature/v1` of `text` (a checkpoint's note text) at `timestamp`
/// (Unix seconds, at most 2^63 − 1): the signature entry to add to the note, and the witness's
/// 0x04 verifier key.
pub fn cosign(
    text: &str,
    name: &str,
    key: &crate::crypto::SigningKey,
    timestamp: u64,
) -> Result<(SignatureLine, VerifierKey), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end with a newline".into()));
    }
    if timestamp > i64::MAX as u64 {
        return Err(NoteError::Malformed("timestamp beyond 2^63 - 1".into()));
    }
    let vk = VerifierKey::of_kind(name, &key.classical_public(), KeyKind::CosignatureV1)?;
    let mut sig = timestamp.to_be_bytes().to_vec();
    sig.extend(
        key.sign_classical(&cosigned_message(text, timestamp))
            .map_err(|e| NoteError::Sign(e.to_string()))?,
    );
    Ok(((name.to_owned(), vk.key_id, sig), vk))
}

#[cfg(test)]
#[allow(clippy::disallowed_macros)]
mod tests {
    use super::*;

    fn vector(rel: &str) -> Vec<u8> {
        crate::testvectors::read(&format!("merkle/checkpoints/{rel}"))
    }

    #[test]
    fn the_c2sp_example_note_verifies() {
        let (k, n) = (
            vector("c2sp-signed-note-example/example.vkey"),
            vector("c2sp-signed-note-example/example.note"),
        );
        let key = VerifierKey::parse(std::str::from_utf8(&k).unwrap()).unwrap();
        let note = Note::parse(&n).unwrap();
        assert_eq!(note.text, "This is an example message.\n");
        assert_eq!(
            note.verify(std::slice::from_ref(&key)).unwrap(),
            vec!["example.com/foo".to_owned()]
        );
        assert_eq!(note.encode().as_bytes(), n.as_slice());
        let mut tampered = note.clone();
        tampered.text = "This is an example massage.\n".into();
        assert_eq!(tampered.verify(&[key]), Err(NoteError::Unverified));
    }

    #[test]
    fn a_real_rekor_v2_checkpoint_verifies_and_parses() {
        let (k, n) = (
            vector("rekor-v2-staging/log.vkey"),
            vector("rekor-v2-staging/checkpoint.note"),
        );
        let key = VerifierKey::parse(std::str::from_utf8(&k).unwrap()).unwrap();
        let note = Note::parse(&n).unwrap();
        note.verify(&[key]).unwrap();
        let cp = Checkpoint::parse(&note.text).unwrap();
        assert_eq!(cp.origin, "log2025-alpha1.rekor.sigstage.dev");
        assert_eq!(cp.size, 646);
        assert_eq!(cp.text(), note.text);
    }

    #[test]
    fn our_notes_round_trip_and_foreign_keys_do_not_verify() {
        let k = crate::crypto::SigningKey::generate("log").unwrap();
        let cp = Checkpoint {
            origin: "treaty.example/audit".into(),
            size: 3,
            root: [7; 32],
            extensions: vec![],
        };
        let note = sign(&cp.text(), "treaty.example/audit", &k).unwrap();
        let parsed = Note::parse(note.encode().as_bytes()).unwrap();
        let vk = VerifierKey::from_key("treaty.example/audit", &k.classical_public()).unwrap();
        assert_eq!(VerifierKey::parse(&vk.encode()).unwrap().key_id, vk.key_id);
        parsed.verify(&[vk]).unwrap();
        let other = crate::crypto::SigningKey::generate("x").unwrap();
        let wrong =
            VerifierKey::from_key("treaty.example/audit", &other.classical_public()).unwrap();
        assert_eq!(parsed.verify(&[wrong]), Err(NoteError::Unverified));
    }

    /// C2SP tlog-cosignature: a witness's `cosignature/v1` (0x04) verifies under its 0x04 key
    /// with its timestamp, and under nothing else — not the same public key as a 0x01 key (the
    /// key id commits to the kind), not with its timestamp or text changed; the 0x01 lines
    /// written before keep verifying under their 0x01 keys.
    #[test]
    fn cosignatures_v1_verify_with_their_timestamp_and_old_lines_still_verify() {
        let log = crate::crypto::SigningKey::generate("log").unwrap();
        let w = crate::crypto::SigningKey::generate("w").unwrap();
        let cp = Checkpoint {
            origin: "treaty.example/audit".into(),
            size: 3,
            root: [7; 32],
            extensions: vec![],
        };
        let mut note = sign(&cp.text(), "treaty.example/audit", &log).unwrap();
        let (line, vk) = cosign(&note.text, "witness.example/w1", &w, 1_679_315_147).unwrap();
        assert_eq!(vk.kind, KeyKind::CosignatureV1);
        // 4-byte key id, 8-byte timestamp, 64-byte signature.
        assert_eq!(line.2.len(), 72);
        note.signatures.push(line.clone());
        let parsed = Note::parse(note.encode().as_bytes()).unwrap();
        let vk = VerifierKey::parse(&vk.encode()).unwrap();
        assert_eq!(vk.kind, KeyKind::CosignatureV1);
        // The key's bytes start with its type, 0x04.
        let enc = vk.encode();
        let raw = b64().decode(enc.splitn(3, '+').nth(2).unwrap()).unwrap();
        assert_eq!(raw[0], 0x04, "{enc}");
        assert_eq!(
            parsed.verified(std::slice::from_ref(&vk)),
            [("witness.example/w1".to_owned(), Some(1_679_315_147))]
        );
        // The same public key as a plain Ed25519 key: another key id, so the line is not its.
        let plain = VerifierKey::from_key("witness.example/w1", &w.classical_public()).unwrap();
        assert_ne!(plain.key_id, vk.key_id);
        assert_eq!(
            parsed.verify(std::slice::from_ref(&plain)),
            Err(NoteError::Unverified)
        );
        // A changed timestamp, a changed text, a truncated signature: refused.
        let tamper = |f: &dyn Fn(&mut Note)| {
            let mut n = parsed.clone();
            f(&mut n);
            n.verify(std::slice::from_ref(&vk))
        };
        assert_eq!(
            tamper(&|n| n.signatures[1].2[7] ^= 1),
            Err(NoteError::Unverified)
        );
        assert_eq!(
            tamper(&|n| n.text.push_str("x\n")),
            Err(NoteError::Unverified)
        );
        assert_eq!(
            tamper(&|n| {
                n.signatures[1].2.pop();
            }),
            Err(NoteError::Unverified)
        );
        assert_eq!(
            tamper(&|n| n.signatures[1].2.truncate(7)),
            Err(NoteError::Unverified)
        );
        // A timestamp past 2^63 - 1 is neither made nor accepted, even signed correctly.
        assert!(cosign(&note.text, "witness.example/w1", &w, 1 << 63).is_err());
        let mut big = (1u64 << 63).to_be_bytes().to_vec();
        big.extend(
            w.sign_classical(&cosigned_message(&note.text, 1 << 63))
                .unwrap(),
        );
        let mut n = parsed.clone();
        n.signatures[1].2 = big;
        assert_eq!(
            n.verify(std::slice::from_ref(&vk)),
            Err(NoteError::Unverified)
        );
        // Its honest twin at the bound verifies (the bound, not the signature, refused it).
        let mut edge = (i64::MAX as u64).to_be_bytes().to_vec();
        edge.extend(
            w.sign_classical(&cosigned_message(&note.text, i64::MAX as u64))
                .unwrap(),
        );
        n.signatures[1].2 = edge;
        assert!(n.verify(std::slice::from_ref(&vk)).is_ok());
        // The form `treaty audit cosign` wrote before (0x01 over the text) still verifies.
        let old = sign(&note.text, "witness.example/w1", &w).unwrap();
        let mut n = parsed.clone();
        n.signatures.extend(old.signatures);
        assert_eq!(
            n.verify(std::slice::from_ref(&plain)),
            Ok(vec!["witness.example/w1".into()])
        );
        assert_eq!(
            n.verify(std::slice::from_ref(&vk)),
            Ok(vec!["witness.example/w1".into()])
        );
        // Other signature types are refused as keys.
        let mut raw = vec![0x02];
        raw.extend(w.classical_public().bytes());
        let id = key_id("x", &raw);
        let k = format!("x+{}+{}", hex::encode(id), b64().encode(raw));
        assert!(VerifierKey::parse(&k).is_err());
    }

    /// A TPM-resident (P-256) key signs notes as C2SP 0x02: key id = SHA-256(SPKI)[:4] (no name),
    /// ASN.1 DER signature; the verifier key round-trips through its text form, and a flipped
    /// signature, another key or another text does not verify.
    #[test]
    fn p256_keys_sign_notes_as_c2sp_ecdsa() {
        use p256::pkcs8::EncodePublicKey as _;
        let k = crate::crypto::SigningKey::deterministic_p256("log", &[4; 32]).unwrap();
        let note = sign("origin\n1\nroot\n", "treaty.example/log", &k).unwrap();
        let vk = VerifierKey::from_key("treaty.example/log", &k.classical_public()).unwrap();
        assert_eq!(vk.kind, KeyKind::EcdsaP256);
        let PublicKey::P256(p) = k.classical_public() else {
            panic!()
        };
        let spki = p.to_public_key_der().unwrap();
        let d = Sha256::digest(spki.as_bytes());
        assert_eq!(vk.key_id, [d[0], d[1], d[2], d[3]]);
        let text = vk.encode();
        let again = VerifierKey::parse(&text).unwrap();
        assert_eq!(again.key, vk.key);
        assert!(text.contains(&format!("+{}+", hex::encode(vk.key_id))));
        let parsed = Note::parse(note.encode().as_bytes()).unwrap();
        assert_eq!(
            parsed.verify(std::slice::from_ref(&vk)).unwrap(),
            vec!["treaty.example/log".to_owned()]
        );
        let sig = &parsed.signatures[0].2;
        assert!(p256::ecdsa::Signature::from_der(sig).is_ok(), "DER");
        let mut flipped = parsed.clone();
        let last = flipped.signatures[0].2.len() - 2;
        flipped.signatures[0].2[last] ^= 1;
        assert!(flipped.verify(std::slice::from_ref(&vk)).is_err());
        let other = crate::crypto::SigningKey::deterministic_p256("o", &[5; 32]).unwrap();
        let ovk = VerifierKey::from_key("treaty.example/log", &other.classical_public()).unwrap();
        assert!(parsed.verify(&[ovk]).is_err());
        let mut changed = parsed.clone();
        changed.text = "origin\n2\nroot\n".into();
        assert!(changed.verify(std::slice::from_ref(&vk)).is_err());
        // A cosignature/v1 is Ed25519 only.
        assert!(cosign("origin\n1\nroot\n", "w", &k, 1).is_err());
    }

    #[test]
    fn malformed_notes_keys_and_checkpoints_are_refused() {
        for bad in [
            &b"no blank line\n"[..],
            b"text\n\n",
            b"text\n\nnot a signature\n",
            b"text\n\n\xe2\x80\x94 name !!!\n",
            b"text\r\n\n\xe2\x80\x94 a AAAAAAA=\n",
        ] {
            assert!(
                Note::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(
            VerifierKey::parse("name+00000000+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
                .is_err()
        );
        assert!(VerifierKey::parse("garbage").is_err());
        for bad in [
            "origin\n",
            "origin\n01\nAAAA\n",
            "origin\n5\nnotbase64\n",
            "origin\n5\nAAAA\n",
            "",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
