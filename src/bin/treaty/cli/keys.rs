//! How the command line gets at keys: the passphrase (environment or terminal), the public member
//! entry of a key file, and which member of this repository a key file is. Shared by every
//! subcommand that signs or asks "what needs my signature?".

use anyhow::Context;

use treaty::crypto::{KeyError, KeyFile};

/// Reads the passphrase from `TREATY_PASSPHRASE` or the terminal.
pub fn passphrase(confirm: bool) -> Result<String, KeyError> {
    if let Ok(p) = std::env::var("TREATY_PASSPHRASE") {
        return Ok(p);
    }
    let p = rpassword::prompt_password("passphrase: ").map_err(|e| KeyError::KeyFile {
        path: "<terminal>".into(),
        reason: format!(
            "cannot read a passphrase (set TREATY_PASSPHRASE when there is no terminal): {e}"
        ),
    })?;
    if confirm {
        let again =
            rpassword::prompt_password("passphrase again: ").map_err(|e| KeyError::KeyFile {
                path: "<terminal>".into(),
                reason: e.to_string(),
            })?;
        if again != p {
            return Err(KeyError::KeyFile {
                path: "<terminal>".into(),
                reason: "passphrases differ".into(),
            });
        }
    }
    Ok(p)
}

/// The public member entry of a key file: a private key file (`ID.key`, whose public half is in
/// the clear) or a public one (`ID.pub.json`). Never touches the secret.
pub fn member_of(file: &std::path::Path) -> anyhow::Result<treaty::governance::model::MemberEntry> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match treaty::json::from_str::<KeyFile>(&text) {
        Ok(kf) => Ok(treaty::governance::model::MemberEntry {
            id: kf.public.member_id,
            ed25519: kf.public.ed25519,
            p256: kf.public.p256,
            ml_dsa_65: kf.public.ml_dsa_65,
            openpgp: None,
        }),
        Err(_) => treaty::json::from_str(&text).with_context(|| {
            format!(
                "{}: neither a treaty private key file (ID.key) nor a public member entry (ID.pub.json)",
                file.display()
            )
        }),
    }
}

/// The member a `--key FILE` names, checked against the keys the repository's groups hold (a
/// key whose id matches no member's key is not that member, whatever its file says).
pub(crate) fn member_for_key(
    file: &std::path::Path,
    repo_dir: &std::path::Path,
) -> anyhow::Result<String> {
    let m = super::keys::member_of(file)?;
    let kid = m
        .classical_key()
        .map_err(|e| anyhow::anyhow!("{}: member {:?}: {e}", file.display(), m.id))?
        .key_id();
    let keys = treaty::lifecycle::member_keys_at(repo_dir)?;
    if !keys.contains_key(&kid) {
        anyhow::bail!(
            "{}: member {:?}'s key {kid} is not a member key of any group in this repository",
            file.display(),
            m.id
        );
    }
    Ok(m.id)
}
