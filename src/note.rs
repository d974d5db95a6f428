//! C2SP `signed-note` and `tlog-checkpoint`: the text formats transparency logs (the Go checksum
//! database, Sigstore's Rekor v2) use for signed checkpoints, so that public witnesses can
//! co-sign ours.
//!
//! Owns parsing (bounded, strict), Ed25519 verifier keys (`name+hex(keyid)+base64(0x01‖key)`,
//! key ID = `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]`), signing and verifying notes, and the
//! checkpoint body (origin, tree size, base64 root hash, extension lines). It never decides which
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
}

/// A signed-note verifier key (Ed25519 only).
#[derive(Debug, Clone)]
pub struct VerifierKey {
    pub name: String,
    pub key_id: [u8; 4],
    pub key: PublicKey,
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
        if alg != ALG_ED25519 {
            return Err(bad("only Ed25519 (algorithm 0x01) keys are supported"));
        }
        let want = hex::decode(id).map_err(|_| bad("key id is not hex"))?;
        let computed = key_id(name, &raw);
        if want.as_slice() != computed {
            return Err(bad("key id does not match the name and key"));
        }
        let key = PublicKey::ed25519(key).map_err(|e| NoteError::Key(e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            key_id: computed,
            key,
        })
    }

    /// The verifier key for an Ed25519 public key.
    pub fn from_key(name: &str, key: &PublicKey) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key("bad key name".into()));
        }
        let mut raw = vec![ALG_ED25519];
        raw.extend(key.bytes());
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &raw),
            key: key.clone(),
        })
    }

    pub fn encode(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend(self.key.bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            b64().encode(raw)
        )
    }
}

/// A parsed note: its text (what is signed, ending in a newline) and signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    /// (key name, key id, signature bytes)
    pub signatures: Vec<(String, [u8; 4], Vec<u8>)>,
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
        let mut ok = Vec::new();
        for (name, id, sig) in &self.signatures {
            for k in trusted
                .iter()
                .filter(|k| &k.name == name && &k.key_id == id)
            {
                if k.key.verify(self.text.as_bytes(), sig) && !ok.contains(&k.name) {
                    ok.push(k.name.clone());
                }
            }
        }
        if ok.is_empty() {
            Err(NoteError::Unverified)
        } else {
            Ok(ok)
        }
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
    let vk = VerifierKey::from_key(name, &key.ed25519_public())?;
    let sig = key.sign_ed25519(text.as_bytes());
    Ok(Note {
        text: text.to_owned(),
        signatures: vec![(name.to_owned(), vk.key_id, sig)],
    })
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
        let vk = VerifierKey::from_key("treaty.example/audit", &k.ed25519_public()).unwrap();
        assert_eq!(VerifierKey::parse(&vk.encode()).unwrap().key_id, vk.key_id);
        parsed.verify(&[vk]).unwrap();
        let other = crate::crypto::SigningKey::generate("x").unwrap();
        let wrong = VerifierKey::from_key("treaty.example/audit", &other.ed25519_public()).unwrap();
        assert_eq!(parsed.verify(&[wrong]), Err(NoteError::Unverified));
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
