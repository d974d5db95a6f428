//! `treaty sigstore PATH --tsa URL --out DIR`: a Sigstore bundle (v0.3, DSSE) per member whose
//! classical signature an approved file's envelope holds (docs/release.md § Sigstore bundles).

use anyhow::Context;
use std::path::PathBuf;

use super::output::{say, tell};
use super::Exit;
use treaty::release::sigstore as sg;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each bundle carries one member's classical signature (Ed25519, or a TPM member's P-256)\nof the approval statement, its key id as the hint, and an RFC 3161 timestamp over the\nsignature bytes from the first authority that answers with a token chaining to the approved\nkeys/tsa-roots.pem. It proves neither the threshold nor the ML-DSA-65 half: the envelope\nstays the authority. Only a file whose approval verifies at HEAD is exported; the bundles\nare written outside the governed tree, to DIR/<path, / as %2F>.<member>.sigstore.json.\n\nExample:\n  treaty sigstore treaties/AURORA-AKASH-001.json --tsa https://tsa.example/ --out ../sigstore"
)]
pub struct Args {
    /// The governed file (or its `.sig`).
    path: PathBuf,
    #[arg(long = "tsa", required = true)]
    tsa: Vec<String>,
    /// Where to write the bundles (created if absent).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Seconds to wait for each authority (1 to 300).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    timeout: u64,
    /// Extra attempts per authority after a network error or HTTP 5xx (0 to 10).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10))]
    retries: u32,
}

pub fn run(a: Args) -> anyhow::Result<Exit> {
    let file = match a.path.to_str().and_then(|p| p.strip_suffix(".sig")) {
        Some(f) => PathBuf::from(f),
        None => a.path.clone(),
    };
    let (root, rel) = super::sign::locate(&file, None)?;
    let repo = treaty::source::Repo::discover(&root)?;
    let tree = repo.tree_at(repo.resolve("HEAD")?)?;
    let anchor = treaty::trust::Anchor::Repository;
    let shown = treaty::text::escape(&rel).into_owned();
    match treaty::verify::judge_one(&tree, &anchor, &rel) {
        Some(f) if f.approved => {}
        Some(f) => {
            let why: Vec<String> = f.findings.iter().map(ToString::to_string).collect();
            tell!(
                "treaty: refused: {shown} is not approved at HEAD: {}",
                why.join("; ")
            );
            return Ok(Exit::Findings);
        }
        None => {
            tell!("treaty: refused: {shown} is not a governed file at HEAD");
            return Ok(Exit::Findings);
        }
    }
    let env_bytes = tree
        .file(&format!("{rel}.sig"))
        .with_context(|| format!("{shown}.sig is not at HEAD"))?;
    let env = treaty::dsse::Envelope::parse(&env_bytes)
        .with_context(|| format!("{shown}.sig is not an approval envelope"))?;
    let rp = treaty::path::RepoPath::new(&rel)
        .with_context(|| format!("{shown}: not a repository path"))?;
    let (_, _, groups) = treaty::sign::requirements(&tree, &rp)?;
    let members: Vec<_> = groups
        .iter()
        .flat_map(|g| g.members.iter().cloned())
        .collect();
    // Every revocation of the root counts against an export (no timestamp is weighed here).
    let (trust, _) = treaty::trust::load(&tree, &anchor, treaty::time::now());
    let revoked = trust.map(|t| t.revoked).unwrap_or_default();
    let signers = sg::counted(&env, treaty::dsse::PAYLOAD_TYPE, &members, &revoked);
    let Some(roots) = super::timestamp::approved_roots(&tree)? else {
        return Ok(Exit::Findings);
    };
    let client = treaty::tsp::Client {
        timeout: std::time::Duration::from_secs(a.timeout),
        retries: a.retries,
    };
    let stamp = |data: &[u8]| {
        treaty::tsp::stamp_first(&a.tsa, data, &client, &roots, |url, e| tell!("{url}: {e}"))
    };
    let made = match sg::export(&env, treaty::dsse::PAYLOAD_TYPE, &signers, stamp) {
        Ok(m) => m,
        Err(e) => {
            tell!("treaty: refused: {e}");
            return Ok(Exit::Findings);
        }
    };
    // One name per path: '%' and '/' percent-encoded, so no two paths share a file.
    let stem = rel.replace('%', "%25").replace('/', "%2F");
    write_bundles(&a.out, &made, |m| {
        format!("{stem}.{}.sigstore.json", m.member)
    })?;
    Ok(Exit::Ok)
}

/// Writes each bundle into `dir` (created if absent) under the name `file_of` gives it, and
/// says what was written.
pub(crate) fn write_bundles(
    dir: &std::path::Path,
    made: &[sg::Exported],
    file_of: impl Fn(&sg::Exported) -> String,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for m in made {
        let f = dir.join(file_of(m));
        treaty::durable::write(&f, &m.bytes, None)?;
        say!(
            "wrote {} ({}'s signature, key {}, timestamped {} by {})",
            f.display(),
            m.member,
            m.keyid,
            m.stamp.time,
            m.stamp.tsa
        );
    }
    Ok(())
}
