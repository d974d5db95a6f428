//! `treaty validate`: schema and format checks on files in the work tree.

use anyhow::Context;
use std::path::PathBuf;

use super::output::say;
use super::{Exit, Format};
use treaty::diag::{Code, Finding};
use treaty::governance::model::{Group, GroupFile, Root, ROOT_GROUP};
use treaty::governance::schema;
use treaty::governance::FileKind;
use treaty::path::RepoPath;
use treaty::source::{Entry, Tree};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  treaty validate\n  treaty validate treaties/AURORA-AKASH-001.json --format json"
)]
pub struct Args {
    /// Files to check (default: every governed file in the work tree).
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Checks an approval envelope's format (not its signatures, which need the trust chain:
/// that is `treaty verify`): strict JSON of the DSSE shape, and a payload that is an approval
/// statement, so a duplicate key is reported before anyone signs beside it.
pub fn validate_envelope(rel: &str, bytes: &[u8]) -> Vec<Finding> {
    use treaty::dsse::{Envelope, EnvelopeError};
    let env = match Envelope::parse(bytes) {
        Ok(e) => e,
        Err(e) => {
            let code = match &e {
                EnvelopeError::Json(j) if j.is_duplicate_key() => Code::DuplicateKey,
                _ => Code::EnvelopeMalformed,
            };
            let (line, column) = match &e {
                EnvelopeError::Json(j) => (j.line(), j.column()),
                _ => (None, None),
            };
            return vec![Finding::error(code, Some(rel), e.to_string()).at(line, column)];
        }
    };
    match treaty::statement::Statement::parse(&env.payload) {
        Ok(s) => match treaty::governance::check_spec_version(&s.predicate.spec_version) {
            Ok(()) => vec![],
            Err(m) => vec![Finding::error(
                Code::SpecVersionUnsupported,
                Some(rel),
                m.to_string(),
            )],
        },
        Err(e) => {
            let code = if e.is_duplicate_key() {
                Code::DuplicateKey
            } else {
                Code::StatementMalformed
            };
            vec![Finding::error(
                code,
                Some(rel),
                format!("payload is not an approval statement: {e}"),
            )]
        }
    }
}

/// Validates one document's bytes; every problem becomes a finding with file, pointer,
/// line and column.
pub fn validate_bytes(tree: &Tree, rel: &str, kind: FileKind, bytes: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    let value = match schema::parse(kind, bytes) {
        Ok(v) => v,
        Err(i) => {
            let code = if i.duplicate_key.is_some() {
                Code::DuplicateKey
            } else {
                Code::ParseError
            };
            return vec![Finding::error(code, Some(rel), i.message).at(i.line, i.column)];
        }
    };
    if kind != FileKind::Group {
        if let Err(i) = schema::header(&value) {
            let (l, c) =
                schema::locate(bytes, &i.pointer).map_or((None, None), |(l, c)| (Some(l), Some(c)));
            out.push(
                Finding::error(
                    Code::SchemaInvalid,
                    Some(rel),
                    format!("{}: {}", i.pointer, i.message),
                )
                .at(l, c),
            );
        }
    }
    if let Some(sp) = kind.schema_path() {
        match schema::compile_at(sp, tree.file(sp).as_deref(), true) {
            Ok(c) => {
                let text = (kind != FileKind::Gates).then_some(bytes);
                if kind == FileKind::Treaty {
                    for i in schema::treaty_rules(&value, text) {
                        out.push(
                            Finding::error(
                                Code::TreatyFailoverSelf,
                                Some(rel),
                                format!("{}: {}", i.pointer, i.message),
                            )
                            .at(i.line, i.column),
                        );
                    }
                }
                for i in c.validate(&value, text) {
                    let ptr = if i.pointer.is_empty() {
                        "/".to_owned()
                    } else {
                        i.pointer.clone()
                    };
                    out.push(
                        Finding::error(
                            Code::SchemaInvalid,
                            Some(rel),
                            format!("{ptr}: {}", i.message),
                        )
                        .at(i.line, i.column),
                    );
                }
            }
            Err(m) => out.push(Finding::error(
                Code::SchemaMissing,
                Some(rel),
                m.to_string(),
            )),
        }
    } else if kind == FileKind::Schema {
        if let Err(m) = schema::compile(&value) {
            out.push(Finding::error(
                Code::SchemaInvalid,
                Some(rel),
                m.to_string(),
            ));
        }
    } else if matches!(kind, FileKind::Snapshot | FileKind::Heartbeat) {
        let r = if kind == FileKind::Snapshot {
            serde_json::from_value::<treaty::snapshot::Snapshot>(value.clone()).map(|_| ())
        } else {
            serde_json::from_value::<treaty::snapshot::Heartbeat>(value.clone()).map(|_| ())
        };
        if let Err(e) = r {
            out.push(Finding::error(
                Code::SchemaInvalid,
                Some(rel),
                e.to_string(),
            ));
        }
    } else if kind == FileKind::TsaRoots {
        // Parsing already required every PEM block to be a certificate.
    } else if kind == FileKind::Rego {
        // Parsing read the header and required `package treaty`; the rules compile when the
        // agent puts the law in force (docs/law.md § Rego).
    } else {
        out.push(Finding::error(
            Code::UnsupportedKind,
            Some(rel),
            "not a kind of file treaty knows",
        ));
    }
    // Rules a schema cannot express: thresholds, duplicates, group ids.
    match kind {
        FileKind::Group => match serde_json::from_value::<GroupFile>(value) {
            Ok(g) => {
                if let Err(e) = Group::from_file(&g) {
                    out.push(Finding::error(Code::GroupInvalid, Some(rel), e.to_string()));
                }
                if format!("keys/groups/{}.json", g.name) != rel {
                    out.push(Finding::error(
                        Code::GroupInvalid,
                        Some(rel),
                        format!("file says name {:?} but sits at {rel}", g.name),
                    ));
                }
            }
            Err(e) if out.is_empty() => {
                out.push(Finding::error(Code::GroupInvalid, Some(rel), e.to_string()))
            }
            Err(_) => {}
        },
        FileKind::Root | FileKind::RootVersion(_) => match serde_json::from_value::<Root>(value) {
            Ok(r) => {
                if let Err(e) = Group::validate(ROOT_GROUP, &r.root_group) {
                    out.push(Finding::error(
                        Code::RootInvalid,
                        Some(rel),
                        format!("root group: {e}"),
                    ));
                }
                for d in &r.delegations {
                    for p in &d.paths {
                        if let Err(e) = treaty::glob::Glob::new(p) {
                            out.push(Finding::error(
                                Code::DelegationInvalid,
                                Some(rel),
                                format!("delegation {:?}: {p:?}: {e}", d.name),
                            ));
                        }
                    }
                }
            }
            Err(e) if out.is_empty() => {
                out.push(Finding::error(Code::RootInvalid, Some(rel), e.to_string()))
            }
            Err(_) => {}
        },
        _ => {}
    }
    out
}

pub fn run(a: Args) -> anyhow::Result<Exit> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    // Outside a repository there is nothing governed to check: saying "all valid" would pass a
    // CI step that ran in the wrong directory.
    let repo = treaty::source::Repo::discover(&cwd).map_err(|_| {
        anyhow::anyhow!(
            "{} is not inside a git repository: run `treaty validate` in a governance repository (or make one with `treaty init`)",
            cwd.display()
        )
    })?;
    let root = repo.workdir().ok_or_else(|| {
        anyhow::anyhow!(
            "the repository at {} has no work tree to validate",
            cwd.display()
        )
    })?;
    let root =
        std::fs::canonicalize(&root).with_context(|| format!("cannot read {}", root.display()))?;
    // A repository without a root is not a governance repository: "all valid" there would pass
    // a check that never looked at anything governed.
    if std::fs::symlink_metadata(root.join("keys/root.json")).is_err() {
        anyhow::bail!(
            "{} has no keys/root.json: not a governance repository (make one with `treaty init`)",
            root.display()
        );
    }
    // The same reader as `verify --worktree`: one set of name and size rules for every command.
    let tree = treaty::source::tree_from_dir(&root)?;
    let mut findings = Vec::new();
    let mut targets: Vec<(String, Entry)> = Vec::new();
    if a.paths.is_empty() {
        // The whole tree: every name verify would refuse is refused here too.
        findings.extend(treaty::verify::name_findings(&tree));
        for (p, e) in &tree.entries {
            // Documents and their envelopes; timestamps (`.sig.tsr`) are DER, judged by verify.
            if p.approval_target().is_none() || p.signed_file().is_some() {
                targets.push((p.to_string(), e.clone()));
            }
        }
    } else {
        // Explicit paths are resolved lexically, never through the file system: a symlinked
        // file or folder on the way is judged as a symlink, exactly as `verify --worktree`
        // judges it, not followed to whatever it points at.
        let here = std::fs::canonicalize(&cwd)
            .with_context(|| format!("cannot read {}", cwd.display()))?;
        for p in &a.paths {
            let abs = if p.is_absolute() {
                p.clone()
            } else {
                here.join(p)
            };
            if abs.to_str().is_none() {
                findings.push(Finding::error(
                    Code::PathInvalid,
                    Some(&p.to_string_lossy()),
                    "invalid path: not UTF-8",
                ));
                continue;
            }
            let Some(rel) = treaty::path::relative_to(&root, &abs) else {
                anyhow::bail!(
                    "{} is outside the repository at {}",
                    p.display(),
                    root.display()
                );
            };
            if rel.is_empty() {
                anyhow::bail!(
                    "{} is the repository itself: run `treaty validate` without a path to check every governed file",
                    p.display()
                );
            }
            match treaty::source::read_in_repo(&root, &rel)? {
                None => anyhow::bail!("cannot read {}: no such file", p.display()),
                Some(Entry::NotAFile) if abs.is_dir() => anyhow::bail!(
                    "{} is a directory: pass files, or no path to check every governed file",
                    p.display()
                ),
                Some(e) => targets.push((rel, e)),
            }
        }
    }
    for (rel, entry) in &targets {
        let rp = match RepoPath::new(rel) {
            Ok(rp) => rp,
            Err(e) => {
                findings.push(Finding::error(
                    Code::PathInvalid,
                    Some(rel),
                    format!("invalid path: {e}"),
                ));
                continue;
            }
        };
        if let Some(f) = treaty::verify::entry_finding(rel, entry) {
            findings.push(f);
            continue;
        }
        let Entry::File(bytes) = entry else {
            continue;
        };
        if rp.signed_file().is_some() {
            findings.extend(validate_envelope(rel, bytes));
        } else {
            findings.extend(validate_bytes(&tree, rel, FileKind::of(&rp), bytes));
        }
    }
    let bad = findings.iter().any(Finding::is_error);
    match a.format {
        Format::Json => {
            let v = serde_json::json!({ "ok": !bad, "valid": !bad, "files": targets.len(), "findings": findings });
            super::output::json(&v)?;
        }
        Format::Human => {
            let s = super::output::Style::stdout();
            for f in &findings {
                s.finding("", f);
            }
            say!(
                "validated {} file(s): {}",
                targets.len(),
                if bad { "INVALID" } else { "all valid" }
            );
        }
    }
    Ok(if bad { Exit::Findings } else { Exit::Ok })
}
