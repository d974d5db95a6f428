//! `treaty init`: scaffold a governance repository.

use anyhow::{bail, Context};
use std::path::PathBuf;

use super::output::say;
use super::Exit;
use crate::governance::model::MemberEntry;

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
    /// How many root members must approve root changes.
    #[arg(long, default_value_t = 1)]
    threshold: u64,
}

pub fn run(a: Args) -> anyhow::Result<Exit> {
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    if a.demo {
        let out = crate::scaffold::demo(&a.dir, !a.no_commit)?;
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
        let m: MemberEntry = crate::json::from_str(&text)
            .with_context(|| format!("{}: not a member public key file", p.display()))?;
        members.push(m);
    }
    crate::scaffold::init(&a.dir, members, a.threshold, 1)?;
    say!(
        "scaffolded {}: schemas, gates/gates.toml, keys/root.json (version 1)",
        a.dir.display()
    );
    say!("next: each root member runs `treaty sign keys/root.json --key KEY`, then commit");
    Ok(Exit::Ok)
}
