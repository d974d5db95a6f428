//! `treaty release …`: the release ceremony (bundle, sign, sign-pgp, seal, timestamp,
//! verify, prove). docs/release.md walks through it.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

use super::output::{say, tell};
use super::Exit;
use treaty::release::ceremony;

/// Where the trusted root comes from, for the steps that judge signatures.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The governance repository whose verified root names the release group (default: the
    /// repository around the current directory).
    #[arg(long = "repo", value_name = "DIR")]
    repo: Option<PathBuf>,
    /// The revision of that repository to take the root from.
    #[arg(long = "trust-rev", default_value = "HEAD")]
    trust_rev: String,
    /// A root pinned out of band (as `treaty verify --trust`).
    #[arg(long)]
    trust: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write NAME.tar.gz (deterministic), NAME.manifest.json and SHA256SUMS into DIR.
    #[command(
        after_help = "With no PATH: the approved state at REV (refused unless everything in it is approved).\nWith PATHs: those artifact files.\n\nExamples:\n  treaty release bundle --rev v1.0 --out dist --name federation-v1.0\n  treaty release bundle target/release/treaty --out dist --name treaty-0.1.0\n  cd dist && sha256sum -c SHA256SUMS"
    )]
    Bundle {
        /// Artifact files (default: the approved governance state at --rev).
        paths: Vec<PathBuf>,
        #[arg(long, default_value = "HEAD")]
        rev: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "release")]
        name: String,
        /// A pinned root to judge the state with (as `treaty verify --trust`).
        #[arg(long)]
        trust: Option<PathBuf>,
        #[arg(long = "repo", value_name = "DIR")]
        repo: Option<PathBuf>,
    },
    /// Add this officer's hybrid signature over the manifest (NAME.signatures/MEMBER.json).
    #[command(
        after_help = "Run on the officer's own machine, offline if need be; copy the new file in\nNAME.signatures/ back beside the bundle (files never conflict).\n\nExample:\n  treaty release sign dist/federation-v1.0 --key ~/keys/officer-1.key"
    )]
    Sign {
        /// DIR/NAME
        bundle: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Write NAME.tar.gz.asc, an ASCII-armoured OpenPGP detached signature (`gpg --verify`).
    #[command(
        name = "sign-pgp",
        after_help = "Examples:\n  treaty release sign-pgp dist/federation-v1.0 --pgp-key officer-1.sec.asc\n  treaty release sign-pgp dist/federation-v1.0 --gpg-program gpg --local-user 0xFPR\n  gpg --verify dist/federation-v1.0.tar.gz.asc dist/federation-v1.0.tar.gz"
    )]
    SignPgp {
        bundle: PathBuf,
        /// An OpenPGP secret key file (armoured or binary); v4 EdDSA keys work with GnuPG 2.2.
        #[arg(
            long,
            conflicts_with = "gpg_program",
            required_unless_present = "gpg_program"
        )]
        pgp_key: Option<PathBuf>,
        /// Sign through this gpg-compatible program instead (keys on hardware tokens).
        #[arg(long)]
        gpg_program: Option<String>,
        /// With --gpg-program: the key to use.
        #[arg(long, requires = "gpg_program")]
        local_user: Option<String>,
        /// Passphrase of --pgp-key (default: none; or TREATY_PGP_PASSPHRASE).
        #[arg(long, env = "TREATY_PGP_PASSPHRASE", hide_env_values = true)]
        pgp_passphrase: Option<String>,
        /// Replace an existing .asc.
        #[arg(long)]
        force: bool,
    },
    /// Check the release group's threshold and write NAME.seal.json; refuses with who is
    /// missing.
    #[command(after_help = "Example:\n  treaty release seal dist/federation-v1.0")]
    Seal {
        bundle: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        #[arg(long, value_enum, default_value_t)]
        format: super::Format,
        /// Do not append a `release.sealed` entry to the repository's audit log.
        #[arg(long)]
        no_audit: bool,
    },
    /// RFC 3161 timestamps over the sealed manifest from one or more authorities.
    #[command(
        after_help = "Each token is checked on receipt (status, imprint, nonce, CMS signature, a critical\ntimeStamping certificate chaining to keys/tsa-roots.pem) before it is written to\nNAME.timestamps/. Succeeds when at least --min authorities answered correctly.\n\nExample:\n  treaty release timestamp dist/federation-v1.0 --tsa https://tsa-a.example/ --tsa https://tsa-b.example/ --min 2"
    )]
    Timestamp {
        bundle: PathBuf,
        #[arg(long = "tsa", required = true)]
        tsa: Vec<String>,
        /// Authorities that must answer correctly (0 to 16; 0 only records what answered).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=16))]
        min: u8,
        /// Seconds to wait for each authority (1 to 300).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
        timeout: u64,
        /// Extra attempts per authority after a network error or HTTP 5xx (0 to 10).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10))]
        retries: u32,
        #[command(flatten)]
        trust: TrustArgs,
        #[arg(long, value_enum, default_value_t)]
        format: super::Format,
    },
    /// Export each sealing officer's classical signature as a Sigstore bundle (v0.3, DSSE),
    /// with an RFC 3161 timestamp over that signature, into DIR/NAME.sigstore/.
    #[command(
        after_help = "A bundle carries one member's classical signature (Ed25519, or a TPM member's P-256) of
the sealed statement, the key's id as its hint, and a timestamp over the signature bytes
(what Sigstore verifiers check), so tools that read Sigstore bundles can check it. It
proves neither the threshold nor the ML-DSA-65 half: the seal stays the authority
(docs/release.md § Sigstore bundles). `treaty release verify` checks the bundles it finds.

Example:
  treaty release sigstore dist/federation-v1.0 --tsa https://tsa-a.example/"
    )]
    Sigstore {
        bundle: PathBuf,
        /// Authorities to ask, in order, for each bundle; the first that answers with a token
        /// that verifies against keys/tsa-roots.pem stamps it.
        #[arg(long = "tsa", required = true)]
        tsa: Vec<String>,
        /// Seconds to wait for each authority (1 to 300).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
        timeout: u64,
        /// Extra attempts per authority after a network error or HTTP 5xx (0 to 10).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10))]
        retries: u32,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Check a bundle layer by layer: integrity (digests, entries, manifest), authenticity
    /// (threshold of hybrid signatures; OpenPGP), time (RFC 3161), history (Merkle root).
    /// Exit 1 names the first layer that failed.
    #[command(
        after_help = "Examples:\n  treaty release verify dist/federation-v1.0\n  treaty release verify dist/federation-v1.0 --trust root-v1.json --format json\n  treaty release verify dist/federation-v1.0 --proof treaties-akash.proof.json\n  treaty release verify dist/federation-v1.0 --integrity-only   # no repository at hand"
    )]
    Verify {
        /// DIR/NAME, as given to `bundle --out DIR --name NAME`.
        bundle: PathBuf,
        /// Only the layers that need no root: integrity and history.
        #[arg(long)]
        integrity_only: bool,
        /// Valid timestamps required (0 to 16; 0 verifies offline, without any authority: the
        /// time layer then proves nothing about when the release was sealed).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=16))]
        min_timestamps: u8,
        /// An inclusion proof from `treaty release prove` to check too.
        #[arg(long)]
        proof: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
        #[arg(long, value_enum, default_value_t)]
        format: super::Format,
    },
    /// Print FILE's RFC 9162 inclusion proof in the bundle's Merkle tree (JSON).
    #[command(
        after_help = "Example:\n  treaty release prove dist/federation-v1.0 treaties/AURORA-AKASH-001.json > p.json\n  treaty release verify dist/federation-v1.0 --proof p.json"
    )]
    Prove { bundle: PathBuf, file: String },
}

fn split(bundle: &Path) -> anyhow::Result<(&Path, &str)> {
    let dir = bundle
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = bundle
        .file_name()
        .and_then(|n| n.to_str())
        .context("the bundle must be named DIR/NAME")?;
    Ok((dir, name))
}

/// The release trust, or (for verify) the reason there is none. `Err` only for I/O.
fn load_trust(t: &TrustArgs) -> anyhow::Result<Result<ceremony::ReleaseTrust, String>> {
    let dir = match &t.repo {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let repo = treaty::source::Repo::discover(&dir)?;
    let commit = repo.resolve(&t.trust_rev)?;
    let tree = repo.tree_at(commit)?;
    let anchor = super::anchor(t.trust.as_deref())?;
    Ok(match ceremony::release_trust(&tree, &anchor) {
        Ok(rt) => Ok(rt),
        Err(treaty::release::ReleaseError::Refused(m)) => Err(m),
        Err(e) => return Err(e.into()),
    })
}

/// The release trust for a step that cannot proceed without it; prints the refusal.
fn trusted(t: &TrustArgs) -> anyhow::Result<Option<ceremony::ReleaseTrust>> {
    Ok(match load_trust(t)? {
        Ok(rt) => Some(rt),
        Err(m) => {
            tell!("treaty: refused: {m}");
            None
        }
    })
}

fn refused(e: treaty::release::ReleaseError) -> anyhow::Result<Exit> {
    match e {
        treaty::release::ReleaseError::Refused(m) => {
            tell!("treaty: refused: {m}");
            Ok(Exit::Findings)
        }
        e => Err(e.into()),
    }
}

pub fn run(c: Command) -> anyhow::Result<Exit> {
    let quiet = super::output::quiet();
    let (paths, rev, out, name, trust, repo) = match c {
        Command::Bundle {
            paths,
            rev,
            out,
            name,
            trust,
            repo,
        } => (paths, rev, out, name, trust, repo),
        Command::Verify {
            bundle,
            integrity_only,
            min_timestamps,
            proof,
            trust,
            format,
        } => {
            return verify(
                &bundle,
                integrity_only,
                usize::from(min_timestamps),
                proof,
                &trust,
                format,
            )
        }
        Command::Sign { bundle, key, trust } => return sign(&bundle, &key, &trust),
        Command::SignPgp {
            bundle,
            pgp_key,
            gpg_program,
            local_user,
            pgp_passphrase,
            force,
        } => {
            return sign_pgp(
                &bundle,
                pgp_key.as_deref(),
                gpg_program.as_deref(),
                local_user.as_deref(),
                pgp_passphrase.as_deref(),
                force,
            )
        }
        Command::Seal {
            bundle,
            trust,
            format,
            no_audit,
        } => return seal(&bundle, &trust, format, no_audit),
        Command::Timestamp {
            bundle,
            tsa,
            min,
            timeout,
            retries,
            trust,
            format,
        } => {
            if usize::from(min) > tsa.len() {
                anyhow::bail!(
                    "--min {min} asks for more authorities than the {} --tsa given",
                    tsa.len()
                );
            }
            return timestamp(
                &bundle,
                &tsa,
                usize::from(min),
                timeout,
                retries,
                &trust,
                format,
            );
        }
        Command::Sigstore {
            bundle,
            tsa,
            timeout,
            retries,
            trust,
        } => {
            let client = treaty::tsp::Client {
                timeout: std::time::Duration::from_secs(timeout),
                retries,
            };
            return sigstore(&bundle, &tsa, &client, &trust);
        }
        Command::Prove { bundle, file } => {
            let (dir, name) = split(&bundle)?;
            return match treaty::release::prove(dir, name, &file) {
                Ok(p) => {
                    super::output::json(&p)?;
                    Ok(Exit::Ok)
                }
                Err(e) => refused(e),
            };
        }
    };
    let (files, source) = if paths.is_empty() {
        let dir = match repo {
            Some(d) => d,
            None => std::env::current_dir().context("cannot read the current directory")?,
        };
        let repo = treaty::source::Repo::discover(&dir)?;
        let commit = repo.resolve(&rev)?;
        let (tree, parent) = repo.tree_and_parent(commit)?;
        let anchor = super::anchor(trust.as_deref())?;
        let report = treaty::verify::verify_tree(
            &tree,
            parent.as_ref(),
            &treaty::verify::Options {
                anchor,
                at: treaty::time::now(),
                exhaustive: false,
            },
        );
        if !report.approved {
            tell!(
                "treaty: refused: the state at {rev} is not approved ({} of {} files unapproved, {} error(s)); `treaty verify --rev {rev}` says why",
                report.summary.unapproved, report.summary.files, report.summary.errors
            );
            return Ok(Exit::Findings);
        }
        let mut files = Vec::new();
        for p in tree.entries.keys() {
            let bytes = tree
                .read(p)
                .map_err(|e| anyhow::anyhow!("{p}: cannot read: {e:?}"))?;
            files.push((p.to_string(), bytes.into_owned().into()));
        }
        (
            files,
            serde_json::json!({ "revision": rev, "commit": commit.to_string() }),
        )
    } else {
        let mut files = Vec::new();
        for p in &paths {
            let meta = std::fs::symlink_metadata(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            if !meta.is_file() {
                bail!(
                    "{} is not a regular file (directories and symlinks are not bundled)",
                    p.display()
                );
            }
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: not a UTF-8 file name", p.display()))?;
            files.push((name.to_owned(), treaty::release::Input::File(p.clone())));
        }
        (files, serde_json::json!("artifacts"))
    };
    let total: u64 = files
        .iter()
        .map(|(_, i)| match i {
            treaty::release::Input::Bytes(b) => b.len() as u64,
            treaty::release::Input::File(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
        })
        .sum();
    // A bar only where it helps: large inputs, on a terminal. (indicatif draws it on stderr
    // from our own template; no repository text is in it.)
    #[allow(clippy::disallowed_methods)]
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = (!quiet && total > 64 * 1024 * 1024 && on_terminal).then(|| {
        let b = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "bundling {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            b.set_style(style);
        }
        b
    });
    let result = treaty::release::bundle(&out, &name, files, source, bar.as_ref());
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    match result {
        Ok(m) => {
            say!(
                "wrote {}/{}.tar.gz ({} files, {} bytes), {}.manifest.json and SHA256SUMS",
                out.display(),
                name,
                m.files.len(),
                m.archive.size,
                name
            );
            say!(
                "archive sha256 {}  merkle root {}",
                m.archive.sha256,
                m.merkle.root
            );
            Ok(Exit::Ok)
        }
        Err(treaty::release::ReleaseError::Refused(m)) => {
            tell!("treaty: refused: {m}");
            Ok(Exit::Findings)
        }
        Err(e) => Err(e.into()),
    }
}

fn sign(bundle: &Path, key: &Path, t: &TrustArgs) -> anyhow::Result<Exit> {
    let (dir, name) = split(bundle)?;
    let Some(rt) = trusted(t)? else {
        return Ok(Exit::Findings);
    };
    let key = treaty::crypto::SigningKey::load(key, || super::keys::passphrase(false))?;
    match ceremony::sign(dir, name, &key, &rt) {
        Ok(p) => {
            say!(
                "signed {name} as {} (release group {:?}, threshold {}): {}",
                key.member_id,
                rt.group.name,
                rt.group.threshold,
                p.display()
            );
            Ok(Exit::Ok)
        }
        Err(e) => refused(e),
    }
}

fn sign_pgp(
    bundle: &Path,
    key: Option<&Path>,
    gpg: Option<&str>,
    local_user: Option<&str>,
    passphrase: Option<&str>,
    force: bool,
) -> anyhow::Result<Exit> {
    let (dir, name) = split(bundle)?;
    let archive = dir.join(format!("{name}.tar.gz"));
    if !archive.is_file() {
        bail!("{} does not exist", archive.display());
    }
    let out = dir.join(format!("{name}.tar.gz.asc"));
    if out.exists() && !force {
        tell!(
            "treaty: refused: {} already exists; pass --force to replace it",
            out.display()
        );
        return Ok(Exit::Findings);
    }
    let asc = match (key, gpg) {
        (Some(k), _) => treaty::release::pgp::sign_with_key(&archive, k, passphrase)?,
        (None, Some(g)) => treaty::release::pgp::sign_with_gpg(g, &archive, local_user)?,
        (None, None) => bail!("give --pgp-key FILE or --gpg-program PROGRAM"),
    };
    treaty::scaffold::write_atomic(&out, asc.as_bytes())?;
    say!("wrote {}", out.display());
    Ok(Exit::Ok)
}

fn seal(
    bundle: &Path,
    t: &TrustArgs,
    format: super::Format,
    no_audit: bool,
) -> anyhow::Result<Exit> {
    let (dir, name) = split(bundle)?;
    let Some(rt) = trusted(t)? else {
        return Ok(Exit::Findings);
    };
    match ceremony::seal(dir, name, &rt) {
        Ok(s) => {
            let logged = if no_audit {
                Ok(None)
            } else {
                log_seal(t, dir, name, &s, &rt)
            };
            match format {
                super::Format::Json => super::output::json(&s)?,
                super::Format::Human => {
                    say!(
                        "sealed {name}: {} of {} ({}) -> {}",
                        s.signed.len(),
                        s.threshold,
                        s.signed.join(", "),
                        s.path
                    );
                    for (f, why) in &s.ignored {
                        say!("  not counted: {f}: {why}");
                    }
                }
            }
            match logged {
                Ok(Some(i)) => {
                    tell!("logged as audit entry {i} (vouched for at the next `treaty audit checkpoint`)");
                    Ok(Exit::Ok)
                }
                Ok(None) => Ok(Exit::Ok),
                Err(e) => {
                    tell!("treaty: sealed, but the audit log refused the entry: {e:#}");
                    Ok(Exit::Findings)
                }
            }
        }
        Err(e) => refused(e),
    }
}

/// Appends `release.sealed` to the governance repository's audit log; returns its index.
fn log_seal(
    t: &TrustArgs,
    dir: &Path,
    name: &str,
    s: &ceremony::Sealed,
    rt: &ceremony::ReleaseTrust,
) -> anyhow::Result<Option<u64>> {
    let start = match &t.repo {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let git = git2::Repository::discover(&start)
        .with_context(|| format!("{}: not a git repository", start.display()))?;
    let seal_bytes = std::fs::read(ceremony::seal_path(dir, name))?;
    let manifest = std::fs::read(dir.join(format!("{name}.manifest.json")))?;
    let entry = serde_json::json!({
        "kind": "release.sealed",
        "time": treaty::time::format(treaty::time::now()),
        "subject": { "path": format!("{name}.seal.json"), "digest": format!("sha256:{}", treaty::crypto::sha256_hex(&seal_bytes)) },
        "verdict": "sealed",
        "details": {
            "release": name,
            "manifest_sha256": treaty::crypto::sha256_hex(&manifest),
            "signed": s.signed,
            "threshold": s.threshold,
            "group": rt.group.name,
            "root_version": rt.root_version,
        },
    });
    let bytes = treaty::audit::entry_bytes(&entry).map_err(anyhow::Error::msg)?;
    let (old, _, _) =
        treaty::audit::store::append(&git, &[bytes], &format!("audit: release {name} sealed"))?;
    Ok(Some(old))
}

fn timestamp(
    bundle: &Path,
    urls: &[String],
    min: usize,
    timeout: u64,
    retries: u32,
    t: &TrustArgs,
    format: super::Format,
) -> anyhow::Result<Exit> {
    let (dir, name) = split(bundle)?;
    let Some(seal) = read_seal(dir, name)? else {
        return Ok(Exit::Findings);
    };
    let Some(rt) = trusted(t)? else {
        return Ok(Exit::Findings);
    };
    let Some(roots) = trusted_roots(&rt)? else {
        return Ok(Exit::Findings);
    };
    let client = treaty::tsp::Client {
        timeout: std::time::Duration::from_secs(timeout),
        retries,
    };
    let results = ceremony::stamp_all(
        &seal,
        urls,
        &roots,
        &client,
        &ceremony::timestamps_dir(dir, name),
    )?;
    report_stamps(&results, min, format)
}

/// The release trust's approved TSA roots; `None` (said) when there are none usable.
fn trusted_roots(rt: &ceremony::ReleaseTrust) -> anyhow::Result<Option<treaty::tsp::Roots>> {
    let Some(pem) = &rt.tsa_roots else {
        tell!(
            "treaty: refused: {}",
            rt.tsa_problem.as_deref().unwrap_or("no trusted TSA roots")
        );
        return Ok(None);
    };
    Ok(Some(treaty::tsp::Roots::from_pem(pem)?))
}

/// The seal's bytes; `None` (said) when the release is not sealed yet.
fn read_seal(dir: &Path, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let spath = ceremony::seal_path(dir, name);
    match std::fs::read(&spath) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tell!(
                "treaty: refused: {} does not exist; seal the release first (`treaty release seal`)",
                spath.display()
            );
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::new(e).context(spath.display().to_string())),
    }
}

/// `treaty release sigstore`: one Sigstore bundle per officer whose signature the (verified)
/// seal holds, each timestamped over its signature bytes.
fn sigstore(
    bundle: &Path,
    urls: &[String],
    client: &treaty::tsp::Client,
    t: &TrustArgs,
) -> anyhow::Result<Exit> {
    use treaty::release::sigstore as sg;
    let (dir, name) = split(bundle)?;
    let Some(seal) = read_seal(dir, name)? else {
        return Ok(Exit::Findings);
    };
    let Some(rt) = trusted(t)? else {
        return Ok(Exit::Findings);
    };
    let mpath = dir.join(format!("{name}.manifest.json"));
    let manifest =
        std::fs::read(&mpath).with_context(|| format!("cannot read {}", mpath.display()))?;
    // Only a seal that verifies is exported: a bundle is a view of a counted signature.
    if let Err(e) = ceremony::check_seal(name, &manifest, &seal, &rt, None) {
        tell!("treaty: refused: the seal does not verify: {e}");
        return Ok(Exit::Findings);
    }
    let Some(roots) = trusted_roots(&rt)? else {
        return Ok(Exit::Findings);
    };
    let (env, members) = sg::seal_statement(&seal)?;
    let revoked = treaty::approval::effective_revocations(&rt.revoked, None);
    let signers = sg::counted(&env, treaty::dsse::PAYLOAD_TYPE, &members, &revoked);
    let stamp = |data: &[u8]| {
        treaty::tsp::stamp_first(urls, data, client, &roots, |url, e| tell!("{url}: {e}"))
    };
    let made = match sg::export(&env, treaty::dsse::PAYLOAD_TYPE, &signers, stamp) {
        Ok(m) => m,
        Err(e) => {
            tell!("treaty: refused: {e}");
            return Ok(Exit::Findings);
        }
    };
    super::sigstore::write_bundles(&sg::bundles_dir(dir, name), &made, |m| {
        format!("{}.sigstore.json", m.member)
    })?;
    Ok(Exit::Ok)
}

/// Prints each authority's outcome; exit 0 when at least `min` answered correctly.
pub(crate) fn report_stamps(
    results: &[ceremony::Stamped],
    min: usize,
    format: super::Format,
) -> anyhow::Result<Exit> {
    let good = results.iter().filter(|r| r.result.is_ok()).count();
    let ok = good >= min;
    match format {
        super::Format::Json => super::output::json(&serde_json::json!({
            "ok": ok, "valid": good, "required": min, "authorities": results
        }))?,
        super::Format::Human => {
            for r in results {
                match &r.result {
                    Ok(s) => say!(
                        "{}: ok, {} by {} -> {}",
                        r.tsa,
                        s.time,
                        s.tsa,
                        r.file.as_deref().unwrap_or("")
                    ),
                    Err(e) => super::output::finding_line(format_args!("{}: FAILED: {e}", r.tsa)),
                }
            }
            say!(
                "{good} of {} authorities answered correctly; {} required: {}",
                results.len(),
                min,
                if ok { "ok" } else { "NOT ENOUGH" }
            );
        }
    }
    Ok(if ok { Exit::Ok } else { Exit::Findings })
}

fn verify(
    bundle: &Path,
    integrity_only: bool,
    min_timestamps: usize,
    proof: Option<PathBuf>,
    t: &TrustArgs,
    format: super::Format,
) -> anyhow::Result<Exit> {
    let (dir, name) = split(bundle)?;
    let proof = proof
        .map(|p| std::fs::read(&p).with_context(|| format!("cannot read {}", p.display())))
        .transpose()?;
    let layers = if integrity_only {
        let mut l = treaty::release::verify(dir, name)?;
        if let (Some(p), Some(h)) = (&proof, l.iter_mut().find(|l| l.layer == "history")) {
            let m = std::fs::read(dir.join(format!("{name}.manifest.json")))?;
            match treaty::release::check_proof(&m, p) {
                Ok(msg) => h.detail = format!("{}; {msg}", h.detail),
                Err(e) => {
                    h.ok = false;
                    h.detail = e.to_string();
                }
            }
        }
        l
    } else {
        // Not a repository, an unknown --trust-rev, an unreadable --trust: the tool cannot
        // judge (exit 2). A root that does not verify is a finding about content (exit 1).
        let loaded = load_trust(t).context("cannot load the trusted root")?;
        let (rt, problem) = match loaded {
            Ok(rt) => (Some(rt), None),
            Err(m) => (None, Some(m)),
        };
        treaty::release::verify_all(
            dir,
            name,
            &treaty::release::VerifyOptions {
                trust: rt.as_ref(),
                trust_problem: problem,
                min_timestamps,
                proof,
            },
        )?
    };
    let failed = layers.iter().find(|l| !l.ok);
    match format {
        super::Format::Json => super::output::json(&serde_json::json!({
            "ok": failed.is_none(),
            "failed_layer": failed.map(|l| l.layer),
            "layers": layers
        }))?,
        super::Format::Human => {
            for l in &layers {
                let line = format_args!(
                    "{:<13} {}  {}",
                    l.layer,
                    if l.ok { "ok  " } else { "FAIL" },
                    l.detail
                );
                if l.ok {
                    super::output::stdout_line(line);
                } else {
                    super::output::finding_line(line);
                }
            }
            match failed {
                None => say!(
                    "result: VERIFIED{}",
                    if integrity_only {
                        " (integrity and history only)"
                    } else {
                        ""
                    }
                ),
                Some(l) => super::output::finding_line(format_args!(
                    "result: NOT VERIFIED: the {} layer failed",
                    l.layer
                )),
            }
        }
    }
    Ok(if failed.is_none() {
        Exit::Ok
    } else {
        Exit::Findings
    })
}
