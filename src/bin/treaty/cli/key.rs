//! `treaty key gen | show`.

use anyhow::{bail, Context};
use std::path::PathBuf;

use super::output::{say, tell};
use super::Exit;
use treaty::crypto::SigningKey;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Generate a hybrid key pair: ID.key (private, encrypted, mode 0600) and ID.pub.json.
    #[command(
        after_help = "The passphrase comes from TREATY_PASSPHRASE or a prompt.\n\nWith --tpm the classical half is an ECDSA P-256 key created inside a TPM 2.0 that never\nleaves it; the ML-DSA-65 half is encrypted under a key the same TPM keeps sealed, so ID.key\nis useless on another machine. The passphrase, if any, becomes the TPM objects'\nauthorization (wrong guesses count toward the TPM's lockout). Needs a build with\n`--features tpm` (docs/operations.md § TPM-resident keys).\n\nExamples:\n  treaty key gen --id alice --out ~/treaty-keys\n  treaty key gen --id alice --out ~/treaty-keys --tpm\n  treaty key gen --id ci-1 --out keys --tpm --tcti swtpm:host=127.0.0.1,port=2321 --insecure-unencrypted"
    )]
    Gen {
        /// Member id (lowercase letters, digits, '.', '_', '-').
        #[arg(long)]
        id: String,
        /// Directory to write the key files to.
        #[arg(long)]
        out: PathBuf,
        /// Write the private key UNENCRYPTED. Anyone who can read the file can sign as you.
        /// With --tpm: no passphrase on the TPM objects (anyone on this machine who can open
        /// the TPM and read the file can sign).
        #[arg(long)]
        insecure_unencrypted: bool,
        /// Create the classical half inside a TPM 2.0 (ECDSA P-256); never a software fallback.
        #[arg(long)]
        tpm: bool,
        /// The TPM to use (a TSS2 TCTI string); TREATY_TPM_TCTI overrides it, then the default
        /// device:/dev/tpmrm0. Recorded in the key file.
        #[arg(long, requires = "tpm", value_name = "TCTI")]
        tcti: Option<String>,
    },
    /// Revoke a key (a root update); lists the approvals that fall below threshold.
    #[command(
        after_help = "Example (after a compromise):\n  treaty key revoke 3f2a…c9 --reason compromised\n  treaty root sign --key ~/keys/root-1.key"
    )]
    Revoke {
        /// Key id (`treaty key show` prints them).
        keyid: String,
        #[arg(long, value_enum)]
        reason: Reason,
        #[command(flatten)]
        at: super::lifecycle::Where,
    },
    /// Print a key file's member id and key ids (never the secret).
    Show {
        /// A private key file (ID.key) or a public one (ID.pub.json).
        file: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: super::Format,
    },
}

/// Why a key is revoked.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Reason {
    /// The private key may be known to someone else: its signatures never count again.
    Compromised,
    /// Taken out of service in good order.
    Retired,
}

pub fn run(c: Command) -> anyhow::Result<Exit> {
    match c {
        Command::Revoke { keyid, reason, at } => {
            let r = match reason {
                Reason::Compromised => treaty::governance::model::RevocationReason::Compromised,
                Reason::Retired => treaty::governance::model::RevocationReason::Retired,
            };
            super::lifecycle::run_revoke(&keyid, r, &at)
        }
        Command::Gen {
            id,
            out,
            insecure_unencrypted,
            tpm,
            tcti,
        } => {
            if !treaty::governance::model::valid_group_name(&id) {
                bail!("member id {id:?} must match [a-z0-9][a-z0-9._-]{{0,63}}");
            }
            let key_path = out.join(format!("{id}.key"));
            let pub_path = out.join(format!("{id}.pub.json"));
            if key_path.exists() {
                bail!(
                    "{} already exists; refusing to overwrite a key",
                    key_path.display()
                );
            }
            let (k, file) = if tpm {
                if !treaty::tpm::AVAILABLE {
                    return Err(treaty::tpm::TpmError::NotBuilt.into());
                }
                let pass = if insecure_unencrypted {
                    tell!("WARNING: the TPM key's objects get no passphrase: anyone on this machine who can open the TPM and read {} can sign", key_path.display());
                    None
                } else {
                    let p = super::keys::passphrase(true)?;
                    if p.is_empty() {
                        bail!("an empty passphrase would leave the TPM key unprotected; use --insecure-unencrypted if that is really what you want");
                    }
                    Some(p)
                };
                let tcti = treaty::tpm::tcti(tcti.as_deref());
                SigningKey::generate_tpm(&id, &tcti, pass.as_deref())?
            } else {
                let k = SigningKey::generate(&id)?;
                let file = software_file(&k, insecure_unencrypted, &key_path)?;
                (k, file)
            };
            let fresh = std::fs::symlink_metadata(&out).is_err();
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            // A folder this run made is removed again if the key cannot be written.
            let cleanup = |e: anyhow::Error| {
                if fresh {
                    let _ = std::fs::remove_dir(&out);
                }
                e
            };
            let mut body = serde_json::to_vec_pretty(&file)?;
            body.push(b'\n');
            let mut pub_body = serde_json::to_vec_pretty(&treaty::scaffold::member_entry(&k))?;
            pub_body.push(b'\n');
            // Both files or neither: the public half first, removed again if the private key
            // cannot be written, so a failed run leaves nothing that blocks the retry.
            treaty::scaffold::write_atomic(&pub_path, &pub_body).map_err(|e| cleanup(e.into()))?;
            if let Err(e) = write_private(&key_path, &body) {
                let _ = std::fs::remove_file(&pub_path);
                return Err(cleanup(e));
            }
            say!(
                "wrote {} (private) and {} (public member entry)",
                key_path.display(),
                pub_path.display()
            );
            let classical = k.classical_public();
            say!(
                "{:<17} {}{}",
                format!("{} key id:", classical.algorithm()),
                classical.key_id(),
                if k.in_tpm() { " (in the TPM)" } else { "" }
            );
            if let Some(m) = k.mldsa_public() {
                say!("ml-dsa-65 key id: {}", m.key_id());
            }
            Ok(Exit::Ok)
        }
        Command::Show { file, format } => {
            let member = super::keys::member_of(&file)?;
            let (alg, _) = member
                .classical_field()
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let classical_id = member
                .classical_key()
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
                .key_id();
            let ml_id = match &member.ml_dsa_65 {
                Some(m) => {
                    let b = treaty::crypto::unb64(m).context("ml_dsa_65 is not base64")?;
                    Some(treaty::crypto::PublicKey::mldsa65(&b)?.key_id())
                }
                None => None,
            };
            if format == super::Format::Json {
                let p256 = alg == treaty::crypto::Algorithm::EcdsaP256;
                super::output::json(&serde_json::json!({
                    "ok": true,
                    "member": member.id,
                    "classical_algorithm": alg.to_string(),
                    "classical_key_id": classical_id,
                    "ed25519_key_id": if p256 { None } else { Some(&classical_id) },
                    "p256_key_id": if p256 { Some(&classical_id) } else { None },
                    "ml_dsa_65_key_id": ml_id,
                    "hybrid": ml_id.is_some(),
                }))?;
                return Ok(Exit::Ok);
            }
            say!("member: {}", member.id);
            say!("{:<17} {classical_id}", format!("{alg} key id:"));
            if let Some(m) = ml_id {
                say!("ml-dsa-65 key id: {m}");
            }
            Ok(Exit::Ok)
        }
    }
}

/// The key file of a software key: encrypted under a passphrase, or (asked for) not at all.
fn software_file(
    k: &SigningKey,
    insecure_unencrypted: bool,
    key_path: &std::path::Path,
) -> anyhow::Result<treaty::crypto::KeyFile> {
    if insecure_unencrypted {
        tell!(
            "WARNING: writing an UNENCRYPTED private key to {}",
            key_path.display()
        );
        return Ok(k.to_file(None)?);
    }
    let pass = super::keys::passphrase(true)?;
    if pass.is_empty() {
        bail!("an empty passphrase would leave the key unprotected; use --insecure-unencrypted if that is really what you want");
    }
    Ok(k.to_file(Some(&pass))?)
}

/// Writes a private key file with mode 0600 from the start (never world-readable, not even
/// briefly), refusing to follow or replace anything already there.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    // The durable writer creates the file 0600 from the start and removes what it wrote on any
    // error (a full disk must not leave a 0-byte key that blocks the retry); the rename only
    // replaces nothing here because `key gen` refused an existing key before.
    treaty::durable::write(path, bytes, Some(0o600))?;
    Ok(())
}
