//! The CI gatekeeper: `treaty gate --base BASE --head HEAD`.
//!
//! Owns the judgement of a pull request: which files changed, and for each gate (`schema`,
//! `approval`, `version`, `temp-stub`, `no-op`, `expiry`) its findings and status. The rules
//! that judge — trust, gate configuration, schemas — come from BASE, never from HEAD, so a pull
//! request cannot swap the root, loosen a schema, allowlist its own stub or switch a gate off;
//! changes to `keys/`, `gates/` and `schemas/` are themselves governed changes judged under
//! BASE's root. Every gate runs and reports even when another fails. It reads git objects only
//! and never writes to the work tree or the index.

pub mod config;
#[cfg(feature = "github")]
pub mod github;
pub mod noop;
pub mod report;
pub mod stub;
pub mod verdict;

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Code, Finding, Severity};
use crate::glob::Glob;
use crate::path::RepoPath;
use crate::source::{Repo, SourceError, Tree};
use config::{GateConfig, GateId, Mode};

/// Why the gate cannot judge at all (exit 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("base {base} is not an ancestor of head {head}: rebase the branch onto its target, or pass the merge base as --base")]
    NotAncestor { base: String, head: String },
    #[error("cannot resolve {what} {rev:?} in a shallow clone: {reason}; fetch more history (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout)")]
    Shallow {
        what: &'static str,
        rev: String,
        reason: String,
    },
    #[error("gate configuration at base: {0}")]
    Config(#[from] config::ConfigError),
    #[error("no trust anchor at base: {0}; the gate judges a change only against the root its base already trusts (commit the first root to the base branch directly, reviewed by its signers)")]
    Anchor(String),
    #[error("git: {0}")]
    Git(String),
    /// The audit log cannot be read at all (an unknown `--audit-head`, a ref that names no
    /// log): nothing to judge, so exit 2 rather than a finding or a pass.
    #[error("audit log: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("head has a malformed tree object at {path:?}: {why}; git would not check out what the gate reads, so nothing in this change can be judged")]
    MalformedTree {
        path: String,
        why: crate::source::TreeError,
    },
}

/// A gate's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Pending,
    /// Warn-only mode and something was found.
    Warn,
    Off,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    pub id: &'static str,
    pub mode: Mode,
    pub status: Status,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangedFile {
    pub path: String,
    /// `added`, `modified`, `deleted`, `renamed`, `typechange`.
    pub change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// Everything `treaty gate` reports (the JSON output; docs/gates.md documents it).
#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub tool: String,
    pub base: String,
    pub head: String,
    pub base_commit: String,
    pub head_commit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub promotion_lane: bool,
    pub passed: bool,
    pub pending: bool,
    pub gates: Vec<GateResult>,
    pub changed: Vec<ChangedFile>,
    pub exemptions: Vec<(String, String)>,
    pub config_sources: Vec<String>,
}

/// What the caller asks.
#[derive(Debug, Clone)]
pub struct GateOptions {
    pub base: String,
    pub head: String,
    /// The published audit log (a log revision or a checkpoint file) the log must extend.
    pub audit_base: Option<String>,
    /// The audit log revision to judge (default: refs/treaty/audit, when it exists).
    pub audit_head: Option<String>,
    pub target: Option<String>,
    pub allow_pending: bool,
    pub at: crate::time::Instant,
}

/// How a path changed between base and head (git's delta kinds, copies read as additions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeKind {
    Added,
    Deleted,
    Renamed,
    Typechange,
    Modified,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Renamed => "renamed",
            ChangeKind::Typechange => "typechange",
            ChangeKind::Modified => "modified",
        }
    }
}

struct Change {
    old: Option<(String, git2::Oid, u32)>,
    new: Option<(String, git2::Oid, u32)>,
    kind: ChangeKind,
    /// Added lines (line number at head, text), for text files.
    added: Vec<(usize, String)>,
    binary: bool,
    /// Why the TEMP-STUB guard cannot read what this path holds at head (a symlink it cannot
    /// follow inside the tree): in a protected path that fails rather than passes unread.
    unscanned: Option<String>,
}

/// The one trust anchor of a gate run (issue 13, class 4): BASE's newest root, pinned. Every
/// judgement of the run — head's approvals, the audit log's trust, the re-sign check, the
/// verdict signer — starts from it. A base without a root, or with one that does not parse, is
/// no anchor at all, and the gate refuses to judge (exit 2) rather than fall back on a root
/// the pull request itself supplies.
pub fn base_anchor(base_tree: &Tree) -> Result<crate::trust::Anchor, GateError> {
    let bytes = base_tree.file(crate::trust::ROOT_PATH).ok_or_else(|| {
        GateError::Anchor(format!(
            "{} is absent or unreadable",
            crate::trust::ROOT_PATH
        ))
    })?;
    let root: crate::governance::model::Root = crate::json::from_slice(&bytes).map_err(|e| {
        GateError::Anchor(format!("{} does not parse: {e}", crate::trust::ROOT_PATH))
    })?;
    Ok(crate::trust::Anchor::Pinned(Box::new(root)))
}

/// The audit gate: the log at the audit head must verify under BASE's trust and, when a
/// published checkpoint is given, extend it. No log and no published checkpoint: nothing to
/// judge.
fn audit_findings(
    repo: &Repo,
    base_tree: &Tree,
    anchor: &crate::trust::Anchor,
    o: &GateOptions,
) -> Result<Vec<Finding>, GateError> {
    use crate::audit::{store, LogTrust, AUDIT_REF};
    let at = Some(AUDIT_REF);
    let fail = |code: Code, m: String| {
        vec![Finding::error(code, at, m).help(
            "the log is append-only: restore refs/treaty/audit to an extension of the published checkpoint (`treaty audit verify --from CHECKPOINT` says where it diverges)",
        )]
    };
    // An --audit-head that names nothing is a usage error (exit 2), not a finding.
    let head = store::resolve(&repo.repo, o.audit_head.as_deref())?;
    if head.is_none() && o.audit_base.is_none() {
        return Ok(Vec::new());
    }
    let (trust, _) = crate::trust::load(base_tree, anchor, o.at);
    let Some(trust) = trust.filter(|t| t.chain_ok) else {
        return Ok(fail(
            Code::AuditInvalid,
            "cannot judge the audit log: the base root does not verify".into(),
        ));
    };
    let lt = match LogTrust::from_trust(&trust) {
        Ok(t) => t,
        Err(m) => {
            return Ok(fail(
                Code::AuditInvalid,
                format!("cannot judge the audit log: {m}"),
            ))
        }
    };
    let old = match o
        .audit_base
        .as_deref()
        .map(|b| store::read_checkpoint_arg(&repo.repo, b))
        .transpose()
    {
        Ok(c) => c,
        Err(e) => {
            return Ok(fail(
                Code::AuditInvalid,
                format!("the published checkpoint: {e}"),
            ))
        }
    };
    Ok(match store::verify(&repo.repo, head, &lt, old.as_deref()) {
        Err(e @ crate::audit::AuditError::NotALog { .. }) => return Err(e.into()),
        Err(e) => fail(Code::AuditInvalid, e.to_string()),
        Ok((report, _)) => report
            .problems
            .iter()
            .map(|p| {
                let code = match p.kind {
                    crate::audit::ProblemKind::NotExtension => Code::AuditNotExtension,
                    crate::audit::ProblemKind::Invalid => Code::AuditInvalid,
                };
                Finding::error(code, at, p.to_string())
            })
            .collect(),
    })
}

fn resolve(repo: &Repo, rev: &str, what: &'static str) -> Result<git2::Oid, GateError> {
    repo.resolve(rev).map_err(|e| {
        if repo.repo.is_shallow() {
            GateError::Shallow {
                what,
                rev: rev.to_owned(),
                reason: e.to_string(),
            }
        } else {
            GateError::Source(e)
        }
    })
}

fn diff(repo: &Repo, base: git2::Oid, head: git2::Oid) -> Result<Vec<Change>, GateError> {
    let g = |e: git2::Error| GateError::Git(e.message().to_owned());
    // libgit2's diff trusts tree objects to be well formed; every tree the change brings is
    // checked first (those equal to base's were checked when base was judged).
    let (bt, ht) = (repo.raw_commit(base)?.tree, repo.raw_commit(head)?.tree);
    if let Err((path, why)) = repo.check_trees(ht, Some(bt))? {
        return Err(GateError::MalformedTree { path, why });
    }
    let bt = repo
        .repo
        .find_commit(base)
        .and_then(|c| c.tree())
        .map_err(g)?;
    let ht = repo
        .repo
        .find_commit(head)
        .and_then(|c| c.tree())
        .map_err(g)?;
    let mut opts = git2::DiffOptions::new();
    opts.include_typechange(true).context_lines(0);
    let mut d = repo
        .repo
        .diff_tree_to_tree(Some(&bt), Some(&ht), Some(&mut opts))
        .map_err(g)?;
    let mut find = git2::DiffFindOptions::new();
    find.renames(true);
    d.find_similar(Some(&mut find)).map_err(g)?;
    // Added lines come from the blobs themselves, never from libgit2's textual patch: a patch
    // honours `.gitattributes` (`-diff`, `binary`), which the pull request itself can change
    // to hide its lines from the scan (issue 13, class 1a).
    let mut out = Vec::new();
    for delta in d.deltas() {
        let side = |f: git2::DiffFile| {
            f.path_bytes().map(|p| {
                (
                    String::from_utf8_lossy(p).into_owned(),
                    f.id(),
                    u32::from(f.mode()),
                )
            })
        };
        let kind = match delta.status() {
            git2::Delta::Added | git2::Delta::Copied => ChangeKind::Added,
            git2::Delta::Deleted => ChangeKind::Deleted,
            git2::Delta::Renamed => ChangeKind::Renamed,
            git2::Delta::Typechange => ChangeKind::Typechange,
            _ => ChangeKind::Modified,
        };
        let old = (kind != ChangeKind::Added)
            .then(|| side(delta.old_file()))
            .flatten();
        let new = (kind != ChangeKind::Deleted)
            .then(|| side(delta.new_file()))
            .flatten();
        // What a checkout puts at the path: a regular file's bytes, or — for a symlink — the bytes
        // of the file it points to inside the tree (compilers follow links; a link into an
        // excluded folder must not bring a marker into a protected path unread).
        let mut unscanned = None;
        let new_bytes = match &new {
            Some((_, id, mode)) if is_regular(*mode) => blob(repo, *id),
            Some((p, id, 0o120000)) => match follow_link(repo, ht.id(), p, *id) {
                Ok(b) => Some(b),
                Err(why) => {
                    unscanned = Some(why.to_string());
                    None
                }
            },
            _ => None,
        };
        let new_text = new_bytes.as_deref().map(text_of);
        // Binary: no text encoding found (UTF-16 with a byte order mark is text).
        let binary = matches!(new_text, Some(None));
        // Only an in-place change of a regular file is judged by its added lines: a rename, a
        // copy, or a type change (symlink or submodule → file) brings the whole file under this
        // path's rules, whatever rules its old path or kind had (issue 13, classes 1b, 1c).
        let old_text = match (&old, &new, kind) {
            (Some((op, oid, omode)), Some((np, _, nmode)), ChangeKind::Modified)
                if op == np && is_regular(*omode) && is_regular(*nmode) =>
            {
                blob(repo, *oid)
                    .and_then(|b| text_of(&b))
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        let added = match &new_text {
            Some(Some(t)) => added_lines(&old_text, t),
            _ => Vec::new(),
        };
        out.push(Change {
            old,
            new,
            kind,
            added,
            binary,
            unscanned,
        });
    }
    Ok(out)
}

/// A regular file's mode (git writes 100644 and 100755; 100664 is the legacy form).
fn is_regular(mode: u32) -> bool {
    matches!(mode, 0o100644 | 0o100755 | 0o100664)
}

/// A file's text: UTF-16 (little or big endian) when it starts with a byte order mark, else
/// UTF-8 (invalid bytes replaced); `None` for a binary file (a NUL in the first 8000 bytes, git's
/// own heuristic, once UTF-16 is ruled out).
fn text_of(b: &[u8]) -> Option<String> {
    let utf16 = |be: bool| {
        let units = b[2..].chunks(2).map(|c| {
            let pair = [c[0], *c.get(1).unwrap_or(&0)];
            if be {
                u16::from_be_bytes(pair)
            } else {
                u16::from_le_bytes(pair)
            }
        });
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect::<String>()
    };
    match b {
        [0xFF, 0xFE, ..] => Some(utf16(false)),
        [0xFE, 0xFF, ..] => Some(utf16(true)),
        _ if b.iter().take(8000).any(|&c| c == 0) => None,
        _ => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// The bytes of the regular file the symlink `link` (whose target text is blob `id`) points
/// to inside tree `root`, following up to 8 links; an error says why it cannot be read (outside
/// the tree, absolute, a directory, missing, a loop).
/// Why a symlink's target could not be read for the scan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Unscanned {
    #[error("git: {0}")]
    Git(String),
    #[error("its target cannot be read")]
    TargetUnreadable,
    #[error("its target is not UTF-8")]
    TargetNotUtf8,
    #[error("it points outside the repository ({target})")]
    Outside { target: String },
    #[error("its target {path} does not exist at head")]
    Missing { path: String },
    #[error("{path} cannot be read")]
    Unreadable { path: String },
    #[error("it points to {path}, which is not a file")]
    NotAFile { path: String },
    #[error("it is a chain of more than 8 links")]
    TooManyLinks,
}

fn follow_link(
    repo: &Repo,
    root: git2::Oid,
    link: &str,
    id: git2::Oid,
) -> Result<Vec<u8>, Unscanned> {
    let tree = repo
        .repo
        .find_tree(root)
        .map_err(|e| Unscanned::Git(e.message().to_owned()))?;
    let (mut path, mut target_id) = (link.to_owned(), id);
    for _ in 0..8 {
        let target = blob(repo, target_id).ok_or(Unscanned::TargetUnreadable)?;
        let target = String::from_utf8(target).map_err(|_| Unscanned::TargetNotUtf8)?;
        if target.starts_with('/') {
            return Err(Unscanned::Outside { target });
        }
        let mut parts: Vec<&str> = path.split('/').collect();
        parts.pop();
        for seg in target.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(Unscanned::Outside { target });
                    }
                }
                s => parts.push(s),
            }
        }
        path = parts.join("/");
        let entry = tree
            .get_path(std::path::Path::new(&path))
            .map_err(|_| Unscanned::Missing { path: path.clone() })?;
        match entry.filemode() {
            0o120000 => target_id = entry.id(),
            m if is_regular(u32::try_from(m).unwrap_or(0)) => {
                return blob(repo, entry.id()).ok_or(Unscanned::Unreadable { path });
            }
            _ => return Err(Unscanned::NotAFile { path }),
        }
    }
    Err(Unscanned::TooManyLinks)
}

/// The lines of `new` (numbered from 1) that `old` does not have, counting repeats: a line
/// moved within the file is not added, a second copy of a line is.
fn added_lines(old: &str, new: &str) -> Vec<(usize, String)> {
    let mut have: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for l in old.lines() {
        *have.entry(l).or_default() += 1;
    }
    new.lines()
        .enumerate()
        .filter(|(_, l)| match have.get_mut(l) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

fn blob(repo: &Repo, id: git2::Oid) -> Option<Vec<u8>> {
    if id.is_zero() {
        return None;
    }
    repo.repo.find_blob(id).ok().map(|b| b.content().to_vec())
}

fn glob_any(globs: &[String], path: &str) -> bool {
    globs
        .iter()
        .any(|g| Glob::new(g).is_ok_and(|g| g.is_match(path)))
}

/// Runs every gate.
pub fn run(repo: &Repo, o: &GateOptions) -> Result<GateReport, GateError> {
    let base = resolve(repo, &o.base, "base")?;
    let head = resolve(repo, &o.head, "head")?;
    if base != head
        && !repo
            .repo
            .graph_descendant_of(head, base)
            .map_err(|e| GateError::Git(e.message().to_owned()))?
    {
        // In a shallow clone the history between them may only be cut: "not an ancestor" would
        // send the operator to rebase a branch that is fine.
        if repo.repo.is_shallow() {
            return Err(GateError::Shallow {
                what: "base",
                rev: o.base.clone(),
                reason: format!(
                    "the history between base and head {:?} is cut, so whether base is an ancestor cannot be told",
                    o.head
                ),
            });
        }
        return Err(GateError::NotAncestor {
            base: o.base.clone(),
            head: o.head.clone(),
        });
    }
    let base_tree = repo.tree_at(base)?;
    // Head judged against every version its ancestors committed (base's included), not only
    // base's: a rollback hidden in the pull request's own history is still a rollback.
    let (head_tree, _) = repo.revision(head, false).map_err(|e| match e {
        SourceError::HistoryMissing { object } => GateError::Shallow {
            what: "head's history",
            rev: o.head.clone(),
            reason: format!("{object} is absent"),
        },
        e => GateError::Source(e),
    })?;
    let cfg = GateConfig::from_tree(&base_tree)?;
    let anchor = base_anchor(&base_tree)?;
    let changes = diff(repo, base, head)?;

    let mut found: BTreeMap<GateId, Vec<Finding>> =
        GateId::ALL.iter().map(|g| (*g, Vec::new())).collect();
    let mut push = |gate: GateId, f: Finding| found.entry(gate).or_default().push(f);

    // ---- schema, approval, version: the governed files the change touches ----
    let mut judge: BTreeSet<RepoPath> = BTreeSet::new();
    for c in &changes {
        if let Some((p, ..)) = &c.new {
            if let Ok(rp) = RepoPath::new(p) {
                if crate::governance::is_governed(&rp) {
                    if let Some(target) = rp.approval_target() {
                        if head_tree.entries.contains_key(&target) {
                            judge.insert(target);
                        }
                    }
                    judge.insert(rp);
                }
            }
        }
        if let Some((p, ..)) = &c.old {
            if let Ok(rp) = RepoPath::new(p) {
                let gone = matches!(c.kind, ChangeKind::Deleted | ChangeKind::Renamed);
                if crate::governance::is_governed(&rp) && gone {
                    if rp.approval_target().is_none() {
                        push(
                            GateId::Approval,
                            Finding::error(Code::GovernedFileDeleted, Some(p), format!("{p} was {}", if c.kind == ChangeKind::Renamed { "renamed away" } else { "deleted" }))
                                .help("retire a treaty by approving a new version whose status is `revoked`; never delete governed files"),
                        );
                    } else if let Some(target) = rp.approval_target() {
                        if head_tree.entries.contains_key(&target) {
                            judge.insert(target);
                        }
                    }
                }
            }
        }
    }
    let vopts = crate::verify::Options {
        anchor: anchor.clone(),
        at: o.at,
        exhaustive: true,
    };
    let report =
        crate::verify::verify_scoped(&head_tree, Some(&base_tree), &vopts, &base_tree, &judge);
    for f in &report.findings {
        push(GateId::Approval, f.clone());
    }
    for v in &report.files {
        let errors: Vec<&Finding> = v.findings.iter().filter(|f| f.is_error()).collect();
        let only_threshold =
            !errors.is_empty() && errors.iter().all(|f| f.code == Code::ThresholdNotMet);
        for f in &v.findings {
            let gate = match f.code {
                Code::ParseError
                | Code::DuplicateKey
                | Code::SchemaInvalid
                | Code::SchemaMissing
                | Code::SpecVersionUnsupported
                | Code::TreatyFailoverSelf => GateId::Schema,
                Code::VersionRollback | Code::VersionEquivocation => GateId::Version,
                _ => GateId::Approval,
            };
            if only_threshold && f.code == Code::ThresholdNotMet {
                continue;
            }
            push(gate, f.clone());
        }
        if only_threshold {
            for g in v.groups.iter().filter(|g| !g.met) {
                push(
                    GateId::Approval,
                    Finding {
                        code: Code::ApprovalPending,
                        severity: Severity::Error,
                        path: Some(v.path.clone()),
                        line: None,
                        column: None,
                        message: format!(
                            "group {} has {}/{} signatures (signed: {})",
                            g.name,
                            g.signed.len(),
                            g.threshold,
                            if g.signed.is_empty() {
                                "nobody yet".into()
                            } else {
                                g.signed.join(", ")
                            }
                        ),
                        help: Some(format!("may still sign: {}", g.may_sign.join(", "))),
                    },
                );
            }
        }
        // ---- expiry ----
        let mut expiries: Vec<(String, String)> = Vec::new();
        if let Some(e) = &v.approval_expires {
            expiries.push(("approval".into(), e.clone()));
        }
        if v.kind == "treaty" {
            if let Ok(rp) = RepoPath::new(&v.path) {
                if let Ok(b) = head_tree.read(&rp) {
                    if let Some(e) = crate::json::parse_value(&b)
                        .ok()
                        .and_then(|t| t.get("expires").and_then(|e| e.as_str()).map(str::to_owned))
                    {
                        expiries.push(("treaty".into(), e));
                    }
                }
            }
        }
        for (what, e) in expiries {
            check_expiry(
                &mut push,
                &v.path,
                &what,
                &e,
                o.at,
                cfg.expiry.warn_within_days,
            );
        }
    }
    if let Some(t) = head_tree
        .file(crate::trust::ROOT_PATH)
        .and_then(|b| crate::json::from_slice::<crate::governance::model::Root>(&b).ok())
    {
        check_expiry(
            &mut push,
            crate::trust::ROOT_PATH,
            "root",
            &t.expires,
            o.at,
            cfg.expiry.warn_within_days,
        );
    }

    // ---- temp-stub ----
    let target = o.target.clone().or_else(|| {
        std::env::var("GITHUB_BASE_REF")
            .ok()
            .filter(|s| !s.is_empty())
    });
    let promotion = target
        .as_deref()
        .is_some_and(|t| glob_any(&cfg.promotion.lanes, t));
    let markers: Vec<String> = cfg
        .temp_stub
        .markers
        .iter()
        .map(|m| stub::normalise(m))
        .collect();
    let today = crate::time::format(o.at)[..10].to_owned();
    let mut exemptions = Vec::new();
    let mut scan = |path: &str,
                    lines: &mut dyn Iterator<Item = (usize, String)>,
                    push: &mut dyn FnMut(GateId, Finding)| {
        if !glob_any(&cfg.temp_stub.protect, path) || glob_any(&cfg.temp_stub.exclude, path) {
            return;
        }
        if let Some(ex) = cfg
            .temp_stub
            .exemptions
            .iter()
            .find(|e| Glob::new(&e.path).is_ok_and(|g| g.is_match(path)))
        {
            if !exemptions
                .iter()
                .any(|(p, _): &(String, String)| p == &ex.path)
            {
                exemptions.push((ex.path.clone(), ex.reason.clone()));
            }
            return;
        }
        for (n, text) in lines {
            if !stub::line_has_marker(&text, &markers) {
                continue;
            }
            let allow = cfg
                .temp_stub
                .allowlist
                .iter()
                .find(|a| Glob::new(&a.path).is_ok_and(|g| g.is_match(path)));
            let f = match allow {
                Some(a) if a.expires.as_str() > today.as_str() => Finding::warning(Code::TempStubAllowed, Some(path), format!("marker allowed until {} (tracked in {})", a.expires, a.issue)),
                Some(a) => Finding::error(Code::TempStubAllowlistExpired, Some(path), format!("the allowlist entry for this marker expired on {} (tracked in {})", a.expires, a.issue))
                    .help("finish the work, or extend the entry with an approved gates config change"),
                None => Finding::error(Code::TempStubMarker, Some(path), "TEMP-STUB marker in a protected path")
                    .help("finish the stub before merging, or allowlist it in gates/*.toml with a tracking issue and an expiry"),
            };
            push(GateId::TempStub, f.at(Some(n), None));
        }
    };
    if promotion {
        // Every file at HEAD: read and pre-filtered in parallel (per-thread repository handles),
        // then judged in order.
        use rayon::prelude::*;
        let git_dir = repo.repo.path().to_path_buf();
        let protect =
            |p: &str| glob_any(&cfg.temp_stub.protect, p) && !glob_any(&cfg.temp_stub.exclude, p);
        // (path, None for a binary file, or the lines holding a marker)
        type Hit = (String, Option<Vec<(usize, String)>>);
        let hits: Vec<Hit> = head_tree_all_paths(repo, head)?
            .into_par_iter()
            .flatten()
            .filter(|(path, _)| protect(path))
            .filter_map(|(path, id)| {
                let bytes = crate::source::read_blob(&git_dir, id).ok()?;
                if bytes.iter().take(8000).any(|&b| b == 0) {
                    return Some((path, None));
                }
                let text = String::from_utf8_lossy(&bytes);
                let lines: Vec<(usize, String)> = text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| stub::line_has_marker(l, &markers))
                    .map(|(i, l)| (i + 1, l.to_owned()))
                    .collect();
                (!lines.is_empty()).then_some((path, Some(lines)))
            })
            .collect();
        let mut hits = hits;
        hits.sort();
        for (path, lines) in hits {
            match lines {
                None => push(
                    GateId::TempStub,
                    Finding::warning(Code::BinarySkipped, Some(&path), "binary file not scanned"),
                ),
                Some(lines) => scan(&path, &mut lines.into_iter(), &mut push),
            }
        }
    } else {
        for c in &changes {
            let Some((path, ..)) = &c.new else { continue };
            if let Some(why) = &c.unscanned {
                if glob_any(&cfg.temp_stub.protect, path) && !glob_any(&cfg.temp_stub.exclude, path)
                {
                    push(
                        GateId::TempStub,
                        Finding::error(
                            Code::TempStubUnscanned,
                            Some(path),
                            format!("a symlink the TEMP-STUB guard cannot follow: {why}"),
                        )
                        .help(
                            "point it at a file inside the repository, or commit the file itself",
                        ),
                    );
                }
                continue;
            }
            if c.binary {
                if glob_any(&cfg.temp_stub.protect, path) && !glob_any(&cfg.temp_stub.exclude, path)
                {
                    push(
                        GateId::TempStub,
                        Finding::warning(
                            Code::BinarySkipped,
                            Some(path),
                            "binary file not scanned",
                        ),
                    );
                }
                continue;
            }
            let mut lines = c.added.iter().cloned();
            scan(path, &mut lines, &mut push);
        }
    }

    // ---- no-op ----
    let (real, reasons) = classify(
        repo,
        &changes,
        Some(Resign {
            base: &base_tree,
            head: &head_tree,
            report: &report,
            anchor: &anchor,
            at: o.at,
        }),
        noop::equivalent,
    );
    if changes.is_empty() {
        push(
            GateId::NoOp,
            Finding::error(Code::NoOpChange, None, "the change from base is empty")
                .help("close the pull request, or push the commits that were meant to be in it"),
        );
    } else if !real {
        // The verdict per path class: the strictest class among the files the change touches.
        let governed = changes.iter().any(|c| {
            [&c.old, &c.new]
                .into_iter()
                .flatten()
                .any(|(p, ..)| RepoPath::new(p).is_ok_and(|rp| crate::governance::is_governed(&rp)))
        });
        let verdict = if governed {
            cfg.no_op.governed
        } else {
            cfg.no_op.other
        };
        let message = format!(
            "every change is whitespace, formatting, comments or re-signing without a new signer: {}",
            reasons.join(", ")
        );
        let finding = match verdict {
            config::Verdict::Fail => Finding::error(Code::NoOpChange, None, message),
            config::Verdict::Warn => Finding::warning(Code::NoOpChange, None, message),
        };
        push(
            GateId::NoOp,
            finding.help(if governed {
                "a change to governed files must change something that matters"
            } else {
                "reported, not failed: `[no_op] other` in gates/*.toml says so for files outside the governed folders"
            }),
        );
    }

    // ---- audit ----
    for f in audit_findings(repo, &base_tree, &anchor, o)? {
        push(GateId::Audit, f);
    }

    // ---- statuses ----
    let mut gates = Vec::new();
    for gate in GateId::ALL {
        let id = gate.as_str();
        let mode = cfg.mode(id);
        let mut findings = found.remove(&gate).unwrap_or_default();
        findings.sort_by(|a, b| (&a.path, a.line, a.code).cmp(&(&b.path, b.line, b.code)));
        let status = match mode {
            Mode::Off => {
                findings.clear();
                Status::Off
            }
            _ => {
                let errors: Vec<&Finding> = findings.iter().filter(|f| f.is_error()).collect();
                let raw = if errors.is_empty() {
                    Status::Pass
                } else if errors.iter().all(|f| f.code == Code::ApprovalPending) {
                    Status::Pending
                } else {
                    Status::Fail
                };
                if mode == Mode::Warn && raw != Status::Pass {
                    for f in &mut findings {
                        f.severity = Severity::Warning;
                    }
                    Status::Warn
                } else {
                    raw
                }
            }
        };
        gates.push(GateResult {
            id,
            mode,
            status,
            findings,
        });
    }
    let failed = gates.iter().any(|g| g.status == Status::Fail);
    let pending = gates.iter().any(|g| g.status == Status::Pending);
    Ok(GateReport {
        tool: format!("treaty {}", env!("CARGO_PKG_VERSION")),
        base: o.base.clone(),
        head: o.head.clone(),
        base_commit: base.to_string(),
        head_commit: head.to_string(),
        target,
        promotion_lane: promotion,
        passed: !failed && (!pending || o.allow_pending),
        pending,
        gates,
        changed: changes
            .iter()
            .map(|c| ChangedFile {
                path: c
                    .new
                    .as_ref()
                    .or(c.old.as_ref())
                    .map(|x| x.0.clone())
                    .unwrap_or_default(),
                change: c.kind.as_str(),
                from: (c.kind == ChangeKind::Renamed)
                    .then(|| c.old.as_ref().map(|x| x.0.clone()))
                    .flatten(),
            })
            .collect(),
        exemptions,
        config_sources: cfg.sources,
    })
}

/// Is any change real? Returns that and the paths judged equivalent. Without the trees and
/// report (outside a gate run), a changed `.sig` counts as real.
/// What the re-sign check needs: both trees, head's verdicts, and the run's one anchor and time.
struct Resign<'a> {
    base: &'a Tree,
    head: &'a Tree,
    report: &'a crate::verify::Report,
    anchor: &'a crate::trust::Anchor,
    at: crate::time::Instant,
}

fn classify(
    repo: &Repo,
    changes: &[Change],
    ctx: Option<Resign<'_>>,
    equivalent: Equivalence,
) -> (bool, Vec<String>) {
    let mut reasons = Vec::new();
    let mut real = false;
    for c in changes {
        match (&c.old, &c.new) {
            (Some((op, oid, om)), Some((np, nid, nm)))
                if c.kind == ChangeKind::Modified && op == np && om == nm =>
            {
                let (Some(a), Some(b)) = (blob(repo, *oid), blob(repo, *nid)) else {
                    real = true;
                    continue;
                };
                let same = match (
                    RepoPath::new(np).ok().and_then(|p| p.signed_file()),
                    ctx.as_ref(),
                ) {
                    (Some(file), Some(r)) => resign_only(&file, r),
                    (Some(_), None) => false,
                    (None, _) => equivalent(np, &a, &b),
                };
                if same {
                    reasons.push(np.clone());
                } else {
                    real = true;
                }
            }
            _ => real = true,
        }
    }
    (real, reasons)
}

/// The no-op verdict alone for `base..head`: true when the change would fail the no-op gate
/// (used to measure the guard's false-positive rate on real histories).
pub fn is_noop(repo: &Repo, base: git2::Oid, head: git2::Oid) -> Result<bool, GateError> {
    is_noop_with(repo, base, head, noop::equivalent)
}

/// "Are these two versions of the file at this path equivalent?"
pub type Equivalence = fn(&str, &[u8], &[u8]) -> bool;

/// [`is_noop`] with another file classifier (the benchmark compares the guard's against a
/// baseline on the same commits).
pub fn is_noop_with(
    repo: &Repo,
    base: git2::Oid,
    head: git2::Oid,
    equivalent: Equivalence,
) -> Result<bool, GateError> {
    let changes = diff(repo, base, head)?;
    Ok(changes.is_empty() || !classify(repo, &changes, None, equivalent).0)
}

fn check_expiry(
    push: &mut dyn FnMut(GateId, Finding),
    path: &str,
    what: &str,
    expires: &str,
    at: crate::time::Instant,
    window_days: i64,
) {
    let Ok(t) = crate::time::parse(expires) else {
        return;
    };
    if at >= t {
        push(
            GateId::Expiry,
            Finding::error(
                Code::Expired,
                Some(path),
                format!("the {what} expired at {expires}"),
            )
            .help("renew it: `treaty renew`"),
        );
    } else if t - at <= crate::time::days(window_days) {
        push(
            GateId::Expiry,
            Finding::warning(
                Code::ExpiringSoon,
                Some(path),
                format!("the {what} expires at {expires}, within {window_days} days"),
            ),
        );
    }
}

/// A `.sig` change that only re-signs: the file is unchanged and no member counts at head who
/// did not count at base.
fn resign_only(file: &RepoPath, r: &Resign<'_>) -> bool {
    let (base, head, head_report) = (r.base, r.head, r.report);
    if base.blob_ids.get(file) != head.blob_ids.get(file) {
        return false;
    }
    let Some(hv) = head_report.files.iter().find(|v| v.path == file.as_str()) else {
        return false;
    };
    let bopts = crate::verify::Options {
        anchor: r.anchor.clone(),
        at: r.at,
        exhaustive: true,
    };
    let only: BTreeSet<RepoPath> = [file.clone()].into_iter().collect();
    let br = crate::verify::verify_scoped(base, None, &bopts, base, &only);
    let Some(bv) = br.files.iter().find(|v| v.path == file.as_str()) else {
        return false;
    };
    let signers = |v: &crate::verify::FileVerdict| -> BTreeSet<(String, String)> {
        v.groups
            .iter()
            .flat_map(|g| g.signed.iter().map(move |s| (g.name.clone(), s.clone())))
            .collect()
    };
    // A renewal (the same signers, a new expiry) is a real change: it is what `treaty renew`
    // asks for when an approval runs out.
    hv.approval_expires == bv.approval_expires && signers(hv).is_subset(&signers(bv))
}

/// Every regular file at `commit` (for the promotion-lane full scan).
fn head_tree_all_paths(
    repo: &Repo,
    commit: git2::Oid,
) -> Result<Vec<Option<(String, git2::Oid)>>, GateError> {
    let g = |e: git2::Error| GateError::Git(e.message().to_owned());
    let tree = repo
        .repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(g)?;
    let mut out = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, e| {
        if e.kind() == Some(git2::ObjectType::Blob) && e.filemode() != 0o120000 {
            let name = String::from_utf8_lossy(e.name_bytes());
            out.push(Some((format!("{dir}{name}"), e.id())));
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(g)?;
    Ok(out)
}
