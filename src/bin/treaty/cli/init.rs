//! `treaty init`: scaffold a governance repository.

use anyhow::{bail, Context};
use std::path::PathBuf;

use super::output::say;
use super::Exit;
use treaty::governance::model::MemberEntry;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  treaty init gov --demo
  treaty key gen --id alice --out ~/keys && treaty init gov --root-key ~/keys/alice.pub.json")]
pub struct Args {
    /// Directory to scaffold; `git init`-ed on branch main if it is not a repository.
    dir: PathBuf,
    /// Write the full example federation with DEMO ONLY unencrypted keys, sign it, commit it.
    #[arg(long)]
    demo: bool,
    /// With --demo: write and sign, but do not commit.
    #[arg(long, requires = "demo")]
    no_commit: bool,
    /// Public key files (`ID.pub.json` from `treaty key gen`) of the root group's members.
    #[arg(long = "root-key", conflicts_with = "demo")]
    root_keys: Vec<PathBuf>,
    /// How many root members must approve root changes (1 to the number of --root-key).
    #[arg(long, default_value_t = 1, conflicts_with = "demo")]
    threshold: u64,
}

pub fn run(a: Args) -> anyhow::Result<Exit> {
    // A directory this run creates is removed again if the run fails (a full disk half way
    // through the demo): the retry then starts clean instead of "already exists".
    let dir = a.dir.clone();
    let fresh = std::fs::symlink_metadata(&dir).is_err();
    let r = scaffold(a);
    if r.is_err() && fresh {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

fn scaffold(a: Args) -> anyhow::Result<Exit> {
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    if a.demo {
        let out = treaty::scaffold::demo(&a.dir, !a.no_commit)?;
        say!("wrote the example federation to {}", a.dir.display());
        if let Some(k) = &out.key_dir {
            say!(
                "DEMO ONLY unencrypted private keys: {} (git-ignored; never use them for real)",
                k.display()
            );
        }
        if let Some(c) = &out.commit {
            say!("committed {c}");
        }
        say!("next: cd {} && treaty verify", a.dir.display());
        return Ok(Exit::Ok);
    }
    if a.root_keys.is_empty() {
        bail!("init needs the root group's public keys: make them with `treaty key gen --id NAME --out DIR` and pass each DIR/NAME.pub.json with --root-key (or use --demo)");
    }
    let mut members = Vec::new();
    for p in &a.root_keys {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let m: MemberEntry = treaty::json::from_str(&text)
            .with_context(|| format!("{}: not a member public key file", p.display()))?;
        members.push(m);
    }
    treaty::scaffold::init(&a.dir, members, a.threshold, 1)?;
    say!(
        "scaffolded {}: schemas, gates/gates.toml, keys/root.json (version 1), .github/workflows/treaty-gate.yml",
        a.dir.display()
    );
    // Every governed file the scaffold wrote needs the root group's signatures before the
    // first `treaty verify` passes: list them all, not only the root.
    let tree = treaty::source::tree_from_dir(&a.dir)?;
    let unsigned: Vec<String> = tree
        .entries
        .keys()
        .filter(|p| p.approval_target().is_none() && !p.as_str().starts_with("keys/roots/"))
        .map(|p| p.to_string())
        .collect();
    say!(
        "these {} files need {} of the root group's signatures (docs/bootstrap.md):",
        unsigned.len(),
        a.threshold
    );
    for f in &unsigned {
        say!("  {f}");
    }
    say!(
        "next: cd {} && each root member runs `treaty sign {} --key KEY`, then commit",
        a.dir.display(),
        unsigned.join(" ")
    );
    Ok(Exit::Ok)
}

#[derive(Debug, clap::Subcommand)]
pub enum NewCommand {
    /// A draft treaty (status "draft", zero quotas) valid against the repository's schema.
    #[command(after_help = "Example:
  treaty new treaty AURORA-AKASH-002 --provider akash --provider-name 'Akash Network' --region us-east
  $EDITOR treaties/AURORA-AKASH-002.json      # quotas, SLOs, failover; then \"status\": \"active\"
  treaty validate treaties/AURORA-AKASH-002.json && treaty status --worktree

The provider network must be one the repository's treaty schema lists, and the id's middle part
names it (AURORA-AKASH-…).")]
    Treaty {
        /// Treaty id, e.g. AURORA-NOSANA-001 (written to treaties/ID.json).
        id: String,
        /// The provider's network name (lowercase), e.g. nosana.
        #[arg(long)]
        provider: String,
        /// The provider's display name (default: the network name).
        #[arg(long)]
        provider_name: Option<String>,
        /// The provider's protocol (the schema lists those allowed).
        #[arg(long, default_value = "grpc")]
        protocol: String,
        /// Regions the treaty allows (repeat the flag), e.g. us-east.
        #[arg(long = "region", required = true)]
        regions: Vec<String>,
        /// Days until it expires (1 to 3653).
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u16).range(1..=3653))]
        days: u16,
        /// The federation's name (default: as the repository's treaties name it).
        #[arg(long)]
        federation_name: Option<String>,
        /// The federation's DID, e.g. did:web:example.org (default: as the treaties name it).
        #[arg(long)]
        federation_did: Option<String>,
        #[command(flatten)]
        at: super::lifecycle::Where,
    },
}

pub fn run_new(c: NewCommand) -> anyhow::Result<Exit> {
    match c {
        NewCommand::Treaty {
            id,
            provider,
            provider_name,
            protocol,
            regions,
            days,
            federation_name,
            federation_did,
            at,
        } => {
            let dir = at.dir()?;
            let t = treaty::scaffold::NewTreaty {
                provider_name: provider_name.unwrap_or_else(|| provider.clone()),
                id,
                network: provider,
                protocol,
                regions,
                days,
                federation_name,
                federation_did,
            };
            let rel = treaty::scaffold::new_treaty(&dir, &t)?;
            say!("wrote {rel} (status \"draft\", zero quotas): edit it, then `treaty status --worktree` names who must sign");
            Ok(Exit::Ok)
        }
    }
}
