//! The `treaty` command line: argument parsing and output, nothing else.
//!
//! Each subcommand lives in its own module with its `Args` and a `run()` that calls the
//! library and returns an [`Exit`]. Exit codes are a contract: 0 approved/passed, 1 a finding
//! about content, 2 the tool could not judge (usage, unreadable repository, unresolvable
//! revision, I/O). Nothing here panics on input.

// The agent's command line, compiled into both binaries (treaty-agent's main includes this
// module tree); only treaty-agent calls it.
#[allow(dead_code)]
mod agent;
mod agent_state;
mod audit;
mod emit;
mod gate;
mod hooks;
mod init;
mod key;
mod keys;
mod lifecycle;
mod order;
mod output;
mod release;
mod serve;
mod sign;
mod sigstore;
mod snapshot;
mod timestamp;
mod trust;
mod validate;
mod verify;
mod version;

use self::output::{say, tell};
#[allow(unused_imports)]
pub use agent::agent_main;
use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// The trust anchor for `--trust ROOT`: a root file obtained out of band, or a root group id
/// (`blake3:` and 64 hex digits, as in `keys/root.json`'s `root_group.group_id`); without it,
/// trust on first use of the repository's genesis root. Shared by every command that judges
/// approval.
///
/// The syntax is unambiguous and never depends on what the file system holds (docs/security.md
/// § Trust pins): an argument that starts with `blake3:` is a group id and nothing else — a file
/// of that name in the current directory (which a hostile repository could ship) is never read
/// in its place; every other argument is a path. A root file whose name starts with `blake3:`
/// is passed as `./blake3:…`.
pub(crate) fn anchor(trust: Option<&std::path::Path>) -> anyhow::Result<treaty::trust::Anchor> {
    use anyhow::Context as _;
    let Some(p) = trust else {
        return Ok(treaty::trust::Anchor::Repository);
    };
    match parse_trust_arg(p) {
        TrustArg::GroupId(id) => return Ok(treaty::trust::Anchor::PinnedGroup(id)),
        TrustArg::BadGroupId => anyhow::bail!(
            "--trust {}: a root group id is `blake3:` and 64 lowercase hex digits (a root file whose name starts with `blake3:` is passed as ./{})",
            p.display(),
            p.display()
        ),
        TrustArg::File => {}
    }
    let text =
        std::fs::read(p).with_context(|| format!("cannot read the pinned root {}", p.display()))?;
    let root: treaty::governance::model::Root = treaty::json::from_slice(&text)
        .with_context(|| format!("{}: not a treaty root file", p.display()))?;
    Ok(treaty::trust::Anchor::Pinned(Box::new(root)))
}

/// What a `--trust` argument is, decided by its text alone.
#[derive(Debug, PartialEq, Eq)]
enum TrustArg {
    GroupId(String),
    BadGroupId,
    File,
}

fn parse_trust_arg(p: &std::path::Path) -> TrustArg {
    // Not UTF-8 cannot be a group id, so it is a path.
    let Some(s) = p.to_str() else {
        return TrustArg::File;
    };
    match s.strip_prefix("blake3:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            TrustArg::GroupId(s.to_owned())
        }
        Some(_) => TrustArg::BadGroupId,
        // Anything that reads as `blake3:` to a person — another case, surrounding space — is a
        // mistyped group id, never a file that happens to have that name.
        None if s
            .trim()
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("blake3:")) =>
        {
            TrustArg::BadGroupId
        }
        None => TrustArg::File,
    }
}

/// What a command concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Approved, passed, done.
    Ok,
    /// A finding about content: unapproved, invalid, tampered, malformed, expired.
    Findings,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
}

const AFTER_HELP: &str = "\
Exit codes: 0 approved / passed; 1 a finding about content (unapproved, invalid, tampered,
malformed, expired); 2 the tool could not judge (usage, unreadable repository, unresolvable
revision, I/O).

Examples:
  treaty init gov --demo                 # a signed example federation in ./gov
  treaty verify                          # judge HEAD from git objects
  treaty verify --rev v1.2 --trust root-v1.json --format json
  treaty status                          # who has signed what, who may still sign
  treaty sign treaties/AURORA-AKASH-001.json --key ~/keys/alice.key";

#[derive(Debug, Parser)]
#[command(name = "treaty", version = version::SHORT, long_version = version::LONG, about = "Threshold-signed governance in git: validate, sign, verify", after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes, before or after its name.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Run as if started in DIR (like `git -C`): the repository, and relative paths in other
    /// arguments, are found from there.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    chdir: Option<std::path::PathBuf>,
    /// Print findings and errors only (no per-file "ok" lines, no progress); the exit code
    /// carries the verdict. Machine formats (--format json …) are unaffected.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// When to colour human output (NO_COLOR and CLICOLOR_FORCE are honoured with `auto`).
    #[arg(long, global = true, value_enum, default_value_t = output::ColorChoice::Auto)]
    color: output::ColorChoice,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scaffold a governance repository (with --demo: a signed example federation).
    Init(init::Args),
    /// Generate and inspect hybrid member keys (Ed25519, or ECDSA P-256 in a TPM, + ML-DSA-65).
    #[command(subcommand)]
    Key(key::Command),
    /// Add your signatures to files' approval envelopes (PATH.sig).
    Sign(sign::Args),
    /// Check governed files against their JSON Schemas and format rules (work tree).
    Validate(validate::Args),
    /// Judge the whole approved state at a revision, from git objects.
    Verify(verify::VerifyArgs),
    /// For each governed file: required groups, valid signatures per group, who may still sign.
    Status(verify::StatusArgs),
    /// Judge a pull request: schema, approval, version, temp-stub, no-op and expiry gates.
    Gate(gate::Args),
    /// Signed gate verdicts: `treaty verdict verify FILE`.
    #[command(subcommand)]
    Verdict(gate::VerdictCommand),
    /// Git hooks: `treaty hooks install` runs the gate before every push.
    #[command(subcommand)]
    Hooks(hooks::Command),
    /// Git's merge driver for `*.sig`: the union of both sides' valid signatures.
    MergeSig(hooks::MergeSigArgs),
    /// Release ceremony: bundle, sign, sign-pgp, seal, timestamp, verify, prove.
    #[command(subcommand)]
    Release(release::Command),
    /// Write and sign state/snapshot.json: every governed document's version and digests.
    Snapshot(snapshot::SnapshotArgs),
    /// Write and sign state/heartbeat.json: the snapshot's digest and a short expiry.
    Heartbeat(snapshot::HeartbeatArgs),
    /// The ordered commands between two approved states (JSON lines) for runtime agents.
    Emit(emit::Args),
    /// RFC 3161 timestamp over an approval, so it outlives the retirement of its keys.
    Timestamp(timestamp::Args),
    /// Sigstore bundles (v0.3, DSSE) of an approval's member signatures, for Sigstore tools.
    Sigstore(sigstore::Args),
    /// The transparency log on refs/treaty/audit: append, checkpoint, verify, prove, show.
    #[command(subcommand)]
    Audit(audit::Command),
    /// Who can approve what: `treaty trust show [PATH] [--format table|json|dot|mermaid]`.
    #[command(subcommand)]
    Trust(trust::Command),
    /// Root versions: rotate (new version, new expiry) and sign.
    #[command(subcommand)]
    Root(lifecycle::RootCommand),
    /// Signer groups: create, add-member, remove-member, set-threshold (each a root update).
    #[command(subcommand)]
    Group(lifecycle::GroupCommand),
    /// Add, change or remove a delegation (path glob -> required groups); a root update.
    Delegate(lifecycle::DelegateArgs),
    /// Roles: which group signs releases, snapshots, verdicts, the audit log, orders and
    /// reputation attestations; a root update.
    #[command(subcommand)]
    Role(lifecycle::RoleCommand),
    /// Runtime orders: new, attest (reputation), sign, check (offline, against the approved
    /// state).
    #[command(subcommand)]
    Order(order::OrderCommand),
    /// Provider ACKs and completions: sign, verify.
    #[command(subcommand)]
    Ack(order::AckCommand),
    /// Start a new governed document from a schema-valid template: `treaty new treaty ID`.
    #[command(subcommand)]
    New(init::NewCommand),
    /// List approvals and roots expiring soon, who must sign, and prepare the root renewal.
    Renew(lifecycle::RenewArgs),
    /// Print shell completions (install: `treaty completions bash > ~/.local/share/bash-completion/completions/treaty`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages, one per command (install: `treaty man --out ~/.local/share/man/man1`).
    Man {
        /// Directory to write treaty.1, treaty-verify.1, … into.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

/// Parses the process arguments, runs the command, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    output::set_quiet(cli.global.quiet);
    output::set_color(cli.global.color);
    if let Some(d) = &cli.global.chdir {
        if let Err(e) = std::env::set_current_dir(d) {
            tell!("treaty: error: -C {}: {e}", d.display());
            return ExitCode::from(2);
        }
    }
    let result = match cli.command {
        Command::Init(a) => init::run(a),
        Command::Key(c) => key::run(c),
        Command::Sign(a) => sign::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Verify(a) => verify::run_verify(a),
        Command::Status(a) => verify::run_status(a),
        Command::Gate(a) => gate::run(a),
        Command::Release(c) => release::run(c),
        Command::Timestamp(a) => timestamp::run(a),
        Command::Sigstore(a) => sigstore::run(a),
        Command::Emit(a) => emit::run(a),
        Command::Order(c) => order::run_order(c),
        Command::Ack(c) => order::run_ack(c),
        Command::Snapshot(a) => snapshot::snapshot(a),
        Command::Heartbeat(a) => snapshot::heartbeat(a),
        Command::Audit(c) => audit::run(c),
        Command::Hooks(c) => hooks::run(c),
        Command::MergeSig(a) => hooks::merge_sig(a),
        Command::Verdict(c) => gate::run_verdict(c),
        Command::Root(c) => lifecycle::run_root(c),
        Command::Group(c) => lifecycle::run_group(c),
        Command::Delegate(a) => lifecycle::run_delegate(a),
        Command::Role(c) => lifecycle::run_role(c),
        Command::Trust(c) => trust::run(c),
        Command::New(c) => init::run_new(c),
        Command::Renew(a) => lifecycle::run_renew(a),
        Command::Man { out } => man_pages(&out),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            // A shell script of our own making (nothing in it comes from a repository), written
            // through the one output path so a closed pipe ends quietly instead of panicking.
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "treaty", &mut out);
            output::raw(&String::from_utf8_lossy(&out));
            Ok(Exit::Ok)
        }
    };
    match result {
        Ok(Exit::Ok) => ExitCode::SUCCESS,
        Ok(Exit::Findings) => ExitCode::from(1),
        Err(e) => {
            tell!("treaty: error: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// `treaty man --out DIR`: a page for the command and each subcommand, named as git names its
/// pages (`treaty-release-verify.1`).
fn man_pages(out: &std::path::Path) -> anyhow::Result<Exit> {
    use anyhow::Context as _;
    use clap::CommandFactory;
    fn walk(
        cmd: clap::Command,
        name: String,
        out: &std::path::Path,
        n: &mut usize,
    ) -> anyhow::Result<()> {
        let cmd = cmd.name(name.clone());
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .render(&mut page)
            .with_context(|| format!("cannot render the man page of {name}"))?;
        treaty::durable::write(&out.join(format!("{name}.1")), &page, None)?;
        *n += 1;
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(sub.clone(), format!("{name}-{}", sub.get_name()), out, n)?;
        }
        Ok(())
    }
    let mut n = 0;
    let fresh = std::fs::symlink_metadata(out).is_err();
    if let Err(e) = walk(Cli::command(), "treaty".into(), out, &mut n) {
        // Pages written before the failure go with the folder this run made.
        if fresh {
            let _ = std::fs::remove_dir_all(out);
        }
        return Err(e);
    }
    say!("wrote {n} man pages to {}", out.display());
    Ok(Exit::Ok)
}

/// An error and its causes on one line, each said once: many library errors already include
/// their source's text (`#[error("{path}: {source}")]`), and printing the chain again would
/// repeat the OS error ("No such file or directory … No such file or directory").
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let t = cause.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

#[cfg(test)]
mod trust_arg_tests {
    use super::{parse_trust_arg, TrustArg};
    use std::path::Path;

    #[test]
    fn a_trust_argument_is_a_group_id_or_a_path_by_its_text_alone() {
        let id = format!("blake3:{}", "ab".repeat(32));
        assert_eq!(
            parse_trust_arg(Path::new(&id)),
            TrustArg::GroupId(id.clone())
        );
        // Uppercase, short, long, empty: malformed ids, never paths.
        for bad in [
            format!("blake3:{}", "AB".repeat(32)),
            "blake3:abc".to_owned(),
            format!("blake3:{}0", "ab".repeat(32)),
            "blake3:".to_owned(),
            // What reads as `blake3:` to a person: another case, surrounding white space.
            format!("BLAKE3:{}", "ab".repeat(32)),
            format!("Blake3:{}", "ab".repeat(32)),
            format!(" blake3:{}", "ab".repeat(32)),
            format!("\tblake3:{}", "ab".repeat(32)),
            format!("blake3:{} ", "ab".repeat(32)),
        ] {
            assert_eq!(
                parse_trust_arg(Path::new(&bad)),
                TrustArg::BadGroupId,
                "{bad}"
            );
        }
        for file in [
            "root.json",
            "./blake3:x",
            "dir/blake3:ab",
            "/tmp/root-v1.json",
        ] {
            assert_eq!(parse_trust_arg(Path::new(file)), TrustArg::File, "{file}");
        }
    }
}
