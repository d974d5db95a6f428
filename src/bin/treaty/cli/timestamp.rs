//! `treaty timestamp PATH.sig`: an RFC 3161 timestamp over an approval envelope, so the
//! approval stays provably made while its keys were valid after they are retired.

use anyhow::Context;
use std::path::PathBuf;

use super::output::tell;
use super::Exit;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The token (PATH.sig.tsr, beside the envelope) covers the envelope's exact bytes: stamp an\napproval once its signatures are complete; adding a signature later makes the old token\nstale (reported, ignored) until you stamp again. Authorities are tried in order until one\nanswers correctly; the token must chain to keys/tsa-roots.pem (approved).\n\nExample:\n  treaty timestamp treaties/AURORA-AKASH-001.json.sig --tsa https://tsa.example/ --tsa https://backup-tsa.example/"
)]
pub struct Args {
    /// The approval envelope (`FILE.sig`; `FILE` is accepted too).
    envelope: PathBuf,
    #[arg(long = "tsa", required = true)]
    tsa: Vec<String>,
    /// Seconds to wait for each authority (1 to 300).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    timeout: u64,
    /// Extra attempts per authority after a network error or HTTP 5xx (0 to 10).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=10))]
    retries: u32,
    /// The repository whose approved keys/tsa-roots.pem judges the token (default: the one
    /// around the envelope).
    #[arg(long = "repo", value_name = "DIR")]
    repo: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: super::Format,
}

/// The TSA roots `tree` approves (`keys/tsa-roots.pem`); `None` (said) when there are none
/// usable.
pub(crate) fn approved_roots(
    tree: &treaty::source::Tree,
) -> anyhow::Result<Option<treaty::tsp::Roots>> {
    match treaty::release::ceremony::approved_tsa_roots(tree, &treaty::trust::Anchor::Repository) {
        Ok(pem) => Ok(Some(treaty::tsp::Roots::from_pem(&pem)?)),
        Err(m) => {
            tell!("treaty: refused: {m}");
            Ok(None)
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<Exit> {
    let env_path = if a.envelope.extension().is_some_and(|e| e == "sig") {
        a.envelope.clone()
    } else {
        let mut s = a.envelope.clone().into_os_string();
        s.push(".sig");
        PathBuf::from(s)
    };
    let envelope =
        std::fs::read(&env_path).with_context(|| format!("cannot read {}", env_path.display()))?;
    if let Err(e) = treaty::dsse::Envelope::parse(&envelope) {
        tell!(
            "treaty: refused: {}: not an approval envelope: {e}",
            env_path.display()
        );
        return Ok(Exit::Findings);
    }
    let start = match &a.repo {
        Some(d) => d.clone(),
        None => env_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from),
    };
    let repo = treaty::source::Repo::discover(&start)?;
    let tree = repo.tree_at(repo.resolve("HEAD")?)?;
    let Some(roots) = approved_roots(&tree)? else {
        return Ok(Exit::Findings);
    };
    let client = treaty::tsp::Client {
        timeout: std::time::Duration::from_secs(a.timeout),
        retries: a.retries,
    };
    let mut results = Vec::new();
    for url in &a.tsa {
        let req = treaty::tsp::request(&envelope)?;
        let r = client.post(url, &req.der).and_then(|resp| {
            treaty::tsp::verify_response(&resp, &envelope, Some(&req.nonce), &roots)
                .map(|s| (s, resp))
        });
        match r {
            Ok((stamp, resp)) => {
                let mut out = env_path.clone().into_os_string();
                out.push(".tsr");
                let out = PathBuf::from(out);
                treaty::scaffold::write_atomic(&out, &resp)?;
                results.push(treaty::release::ceremony::Stamped {
                    tsa: url.clone(),
                    result: Ok(stamp),
                    file: Some(out.display().to_string()),
                });
                break;
            }
            Err(e) => results.push(treaty::release::ceremony::Stamped {
                tsa: url.clone(),
                result: Err(e),
                file: None,
            }),
        }
    }
    super::release::report_stamps(&results, 1, a.format)
}
