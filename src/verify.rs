//! Verification: is each governed file, at this revision, approved?
//!
//! Owns threshold counting and the per-file verdict. A file counts as approved only when, for
//! every group its delegation requires, a threshold of *distinct members* have signed *this
//! path, these bytes, this version, these groups* with unrevoked keys, and the root chain that
//! pins those groups verified (docs/model.md § When a file is approved). Hybrid members count
//! only when both their Ed25519 and ML-DSA-65 signatures verify. It reads only the [`Tree`] it
//! is given — git objects or a work tree snapshot — and never writes anything.

use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

use crate::diag::{Code, Finding};
use crate::governance::model::{Group, Revocation};
use crate::governance::schema::{self, Compiled};
use crate::governance::{is_governed, FileKind};
use crate::path::RepoPath;
use crate::source::{Entry, ReadError, Tree};
use crate::time::Instant;
use crate::trust::{self, Anchor, CompiledDelegation, Trust};

pub(crate) use crate::approval::tally;
pub use crate::approval::{judge_approval, GroupTally, Judged, Rules, Subject};
pub use crate::verdict::{FileVerdict, Report, Summary, TrustSummary};

/// Options for [`verify_tree`].
#[derive(Debug, Clone)]
pub struct Options {
    pub anchor: Anchor,
    pub at: Instant,
    /// Check every signature (for `status`), not only up to each threshold.
    pub exhaustive: bool,
}

/// Like [`verify_tree`], reusing and recording per-file verdicts in `cache` (see
/// [`crate::cache`] for what the key covers).
pub fn verify_tree_cached(
    tree: &Tree,
    parent: Option<&Tree>,
    opts: &Options,
    cache: &mut crate::cache::Cache,
) -> Report {
    verify_inner(tree, parent, opts, Some(cache))
}

/// Judges every governed file in `tree`. `parent` is the tree of the first parent commit (or
/// of HEAD when judging the work tree), used for rollback and equivocation checks.
pub fn verify_tree(tree: &Tree, parent: Option<&Tree>, opts: &Options) -> Report {
    verify_inner(tree, parent, opts, None)
}

/// The verdict on one governed file of `tree`, with trust and schemas from the same tree,
/// judged now (`None` if the path is not a governed document there).
pub fn judge_one(tree: &Tree, anchor: &Anchor, path: &str) -> Option<FileVerdict> {
    let rp = RepoPath::new(path).ok()?;
    let only: std::collections::BTreeSet<RepoPath> = std::iter::once(rp).collect();
    let opts = Options {
        anchor: anchor.clone(),
        at: crate::time::now(),
        exhaustive: false,
    };
    verify_scoped(tree, None, &opts, tree, &only)
        .files
        .into_iter()
        .find(|f| f.path == path)
}

/// Like [`verify_tree`], for a pull request: the schemas come from `schema_tree` (the base
/// revision's, so a pull request cannot loosen the schema that judges it), and only the paths
/// in `only` are judged (trust is always established in full).
pub fn verify_scoped(
    tree: &Tree,
    parent: Option<&Tree>,
    opts: &Options,
    schema_tree: &Tree,
    only: &std::collections::BTreeSet<RepoPath>,
) -> Report {
    verify_inner_with(tree, parent, opts, None, schema_tree, Some(only))
}

fn verify_inner(
    tree: &Tree,
    parent: Option<&Tree>,
    opts: &Options,
    cache: Option<&mut crate::cache::Cache>,
) -> Report {
    verify_inner_with(tree, parent, opts, cache, tree, None)
}

fn verify_inner_with(
    tree: &Tree,
    parent: Option<&Tree>,
    opts: &Options,
    cache: Option<&mut crate::cache::Cache>,
    schema_tree: &Tree,
    only: Option<&std::collections::BTreeSet<RepoPath>>,
) -> Report {
    let (trust, mut findings) = trust::load(tree, &opts.anchor, opts.at);
    findings.extend(name_findings(tree));
    let schemas = compile_schemas(schema_tree);
    let files: Vec<(&RepoPath, &Entry)> = tree
        .entries
        .iter()
        .filter(|(p, _)| is_governed(p))
        .filter(|(p, _)| only.is_none_or(|o| o.contains(*p)))
        .collect();
    findings.extend(tree_findings(tree, &files, only.is_none()));
    let mut ctx = Context {
        tree,
        parent,
        trust: trust.as_ref(),
        schemas: &schemas,
        opts,
        tsa: None,
    };
    // Approval timestamps are judged against keys/tsa-roots.pem, itself approved first.
    let tsa = tsa_roots_for(&ctx);
    ctx.tsa = tsa.as_ref();
    let verdicts = judge_files(&ctx, &files, cache);
    if only.is_none() {
        if let Some(t) = trust.as_ref() {
            removals(tree, &verdicts, t, &mut findings);
        }
    }
    report(trust.as_ref(), findings, verdicts, opts.at)
}

/// The schemas the judged tree carries (or, for `--worktree`, the work tree), compiled once.
fn compile_schemas(schema_tree: &Tree) -> Schemas {
    let mut schemas = Schemas::new();
    for kind in [
        FileKind::Root,
        FileKind::Group,
        FileKind::Treaty,
        FileKind::Policy,
        FileKind::Gates,
    ] {
        if let Some(sp) = kind.schema_path() {
            let r = schema::compile_at(sp, schema_tree.file(sp).as_deref(), false);
            schemas.insert(sp, r);
        }
    }
    schemas
}

/// Findings about the tree rather than one document: malformed tree objects, a shallow
/// history (only when the whole tree is judged), and approval artefacts that belong to no
/// judged document.
fn tree_findings(tree: &Tree, files: &[(&RepoPath, &Entry)], whole: bool) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (name, why) in &tree.bad_trees {
        let at = if name.is_empty() {
            "(root tree)"
        } else {
            name.as_str()
        };
        findings.push(
            Finding::error(Code::TreeMalformed, Some(at), format!("malformed tree object: {why}"))
                .help("git fsck refuses this tree and a checkout would not hold what treaty reads; rewrite the commit with a git that writes valid trees"),
        );
    }
    if whole {
        if let Some(h) = tree.history.as_deref() {
            for c in &h.incomplete {
                findings.push(Finding::warning(
                    Code::HistoryIncomplete,
                    None,
                    format!("commit {c} is absent (shallow clone): versions committed before it were not compared"),
                ));
            }
        }
    }
    // Every entry is a judged document, the envelope or timestamp of one, or a finding.
    findings.extend(
        files
            .iter()
            .filter_map(|(p, e)| artefact_finding(p, e, tree)),
    );
    findings
}

/// Judges every document in parallel, reusing cached verdicts and recording fresh ones;
/// sorted by path.
fn judge_files(
    ctx: &Context,
    files: &[(&RepoPath, &Entry)],
    mut cache: Option<&mut crate::cache::Cache>,
) -> Vec<FileVerdict> {
    let opts = ctx.opts;
    let run_key = cache.as_ref().map(|_| {
        crate::cache::run_key(
            ctx.tree,
            &opts.anchor,
            opts.exhaustive,
            ctx.trust.is_some_and(|t| t.chain_ok),
        )
    });
    let shared: Option<&crate::cache::Cache> = cache.as_deref();
    let judged: Vec<(Option<String>, bool, FileVerdict)> = files
        .par_iter()
        .filter(|(p, e)| is_judged_entry(p, e))
        .map(|(p, e)| {
            let key = run_key.as_ref().and_then(|rk| {
                crate::cache::file_key(rk, ctx.tree, ctx.parent, p, FileKind::of(p).schema_path())
            });
            if let (Some(k), Some(c)) = (&key, shared) {
                if let Some(v) = c.get(k, p.as_str(), opts.at) {
                    return (key, false, v);
                }
            }
            (key, true, judge_file(p, e, ctx))
        })
        .collect();
    let mut verdicts = Vec::with_capacity(judged.len());
    let mut seen = Vec::new();
    for (key, fresh, v) in judged {
        if let (Some(k), Some(c)) = (key, cache.as_deref_mut()) {
            if fresh {
                c.put(k.clone(), cached(&v, opts.at));
            }
            seen.push(k);
        }
        verdicts.push(v);
    }
    if let Some(c) = cache.take() {
        c.seen_this_run(seen);
    }
    verdicts.sort_by(|a, b| a.path.cmp(&b.path));
    verdicts
}

/// A fresh verdict as the cache keeps it: with the approval's expiry, and whether it was made
/// after that expiry (such a verdict is never served again).
fn cached(v: &FileVerdict, at: Instant) -> crate::cache::Cached {
    let expires = v.approval_expires.clone();
    let made_after_expiry = expires
        .as_deref()
        .and_then(|e| crate::time::parse(e).ok())
        .is_some_and(|t| at >= t);
    crate::cache::Cached {
        verdict: v.clone(),
        expires,
        made_after_expiry,
    }
}

/// The report: approved only with an intact chain, no error finding and every file approved.
fn report(
    trust: Option<&Trust>,
    mut findings: Vec<Finding>,
    verdicts: Vec<FileVerdict>,
    at: Instant,
) -> Report {
    findings.sort_by(|a, b| (&a.path, a.code).cmp(&(&b.path, b.code)));
    let chain_ok = trust.is_some_and(|t| t.chain_ok);
    let all = || {
        findings
            .iter()
            .chain(verdicts.iter().flat_map(|v| &v.findings))
    };
    let errors = all().filter(|f| f.is_error()).count();
    let warnings = all().filter(|f| !f.is_error()).count();
    let approved_n = verdicts.iter().filter(|v| v.approved).count();
    let approved =
        chain_ok && !findings.iter().any(Finding::is_error) && verdicts.iter().all(|v| v.approved);
    Report {
        approved,
        revision: None,
        commit: None,
        judged_at: crate::time::format(at),
        trust: trust.map(|t| TrustSummary {
            root_version: t.root.version,
            root_expires: t.root.expires.clone(),
            anchor: t.anchor_kind,
            anchor_version: t.anchor_version,
            chain_ok: t.chain_ok,
        }),
        summary: Summary {
            files: verdicts.len(),
            approved: approved_n,
            unapproved: verdicts.len() - approved_n,
            errors,
            warnings,
        },
        files: verdicts,
        findings,
    }
}

/// Is `e` at `p` judged as a document? Approval envelopes and timestamps are judged with the
/// document they belong to; anything that is not a regular file is judged (and refused) whatever
/// its name, so a symlink named `x.sig` cannot hide.
fn is_judged_entry(p: &RepoPath, e: &Entry) -> bool {
    let regular = matches!(e, Entry::File(_) | Entry::Blob(_));
    !regular || p.approval_target().is_none()
}

/// Kinds whose documents carry an approval envelope beside them. Groups do not: the root pins
/// them by `group_id`.
fn takes_envelope(p: &RepoPath) -> bool {
    !matches!(FileKind::of(p), FileKind::Group | FileKind::Unsupported)
        && p.approval_target().is_none()
}

/// The finding for an approval artefact (`x.sig`, `x.sig.tsr`) that belongs to no judged
/// document, or `None` when `p` is not an artefact or is a valid one (docs/spec.md § Governed
/// folders: every entry is a judged document, the envelope or timestamp of one, or a finding).
fn artefact_finding(p: &RepoPath, e: &Entry, tree: &Tree) -> Option<Finding> {
    if !matches!(e, Entry::File(_) | Entry::Blob(_)) {
        return None; // judged as a document, and refused there as a symlink or non-file
    }
    let regular = |q: &RepoPath| {
        matches!(
            tree.entries.get(q),
            Some(Entry::File(_) | Entry::Blob(_) | Entry::TooLarge(_))
        )
    };
    // The document this artefact is about, and what it is.
    let (doc, what) = if let Some(env) = p.stamped_envelope() {
        match env.signed_file() {
            Some(d) if regular(&env) => (d, "timestamp"),
            _ => {
                return Some(Finding::error(
                    Code::OrphanSignature,
                    Some(p.as_str()),
                    format!("timestamp for {env}, which does not exist"),
                ))
            }
        }
    } else if let Some(d) = p.signed_file() {
        (d, "approval")
    } else {
        return None;
    };
    if d_is_artefact(&doc) {
        return Some(
            Finding::error(
                Code::UnexpectedFile,
                Some(p.as_str()),
                format!("an {what} of {doc}, which is itself an approval artefact: nothing judges this file"),
            )
            .help("remove it; approvals and timestamps are never signed or stamped again"),
        );
    }
    if !tree.entries.contains_key(&doc) {
        return Some(
            Finding::error(
                Code::OrphanSignature,
                Some(p.as_str()),
                format!("{what} for {doc}, which does not exist"),
            )
            .help("governed files are retired by an approved version whose status says so, never deleted"),
        );
    }
    if what == "timestamp" {
        // Timestamps are read only beside the envelopes of delegated documents: the root chain
        // and keys/tsa-roots.pem are judged without them, so a `.tsr` there would be bytes
        // nobody judges.
        if matches!(
            FileKind::of(&doc),
            FileKind::Root | FileKind::RootVersion(_) | FileKind::TsaRoots
        ) {
            return Some(
                Finding::error(
                    Code::UnexpectedFile,
                    Some(p.as_str()),
                    format!("a timestamp of the approval of {doc}, which is judged without timestamps: nothing reads this file"),
                )
                .help("remove it; only approvals of delegated documents are timestamped"),
            );
        }
        // A blob-mode entry naming a commit or a tree would read as "no timestamp".
        if matches!(tree.read(p), Err(crate::source::ReadError::NotAFile)) {
            return Some(Finding::error(
                Code::NotAFile,
                Some(p.as_str()),
                "the entry names an object that is not a blob (git fsck refuses it; checkout fails)",
            ));
        }
    }
    if !takes_envelope(&doc) {
        return Some(
            Finding::error(
                Code::UnexpectedFile,
                Some(p.as_str()),
                format!("an {what} of {doc}, which is not approved by envelope (groups are pinned by the root; other files of its kind are refused): nothing judges this file"),
            )
            .help("remove it"),
        );
    }
    None
}

fn d_is_artefact(p: &RepoPath) -> bool {
    p.approval_target().is_some() || p.as_str().ends_with(".sig") || p.as_str().ends_with(".tsr")
}

/// Governed documents that some ancestor committed and this revision lacks. Removing one needs
/// the snapshot role (docs/spec.md § Removal): the revision's `state/snapshot.json` must be
/// approved and list exactly the revision's documents, so the role that attests to the whole
/// set of files approved the smaller set. Groups are excepted (the root's pin decides them).
fn removals(tree: &Tree, verdicts: &[FileVerdict], trust: &Trust, findings: &mut Vec<Finding>) {
    let Some(h) = tree.history.as_deref() else {
        return;
    };
    let mut removed: Vec<&RepoPath> = h
        .paths()
        .filter(|p| is_governed(p) && FileKind::of(p) != FileKind::Group)
        .filter(|p| !tree.entries.contains_key(*p))
        .collect();
    if removed.is_empty() {
        return;
    }
    removed.sort();
    // A snapshot that some ancestor already held beside the document predates it (or ignored
    // it): it matches the smaller state by accident and approves nothing about the removal.
    let (stale, removed): (Vec<&RepoPath>, Vec<&RepoPath>) = removed
        .into_iter()
        .partition(|p| h.stale_removals.contains(*p));
    for p in stale {
        findings.push(
            Finding::error(
                Code::GovernedFileDeleted,
                Some(p.as_str()),
                format!("removed without approval: an ancestor commit held {p} beside the very state/snapshot.json this revision has, so that snapshot does not approve removing it"),
            )
            .help("the snapshot role approves a removal with a new snapshot of the state without the file (`treaty snapshot`)"),
        );
    }
    if removed.is_empty() {
        return;
    }
    let snapshot = crate::snapshot::SNAPSHOT_PATH;
    let snapshot_approved = verdicts.iter().any(|v| v.path == snapshot && v.approved);
    let matches = snapshot_approved
        && tree
            .file(snapshot)
            .and_then(|b| crate::json::from_slice::<crate::snapshot::Snapshot>(&b).ok())
            .is_some_and(|snap| {
                crate::snapshot::mismatches(
                    tree,
                    &snap,
                    trust.root.version,
                    &mut crate::facts::FactCache::in_memory(),
                )
                .is_empty()
            });
    if matches {
        return;
    }
    for p in removed {
        let was = h
            .mark(p)
            .and_then(|m| m.version)
            .map_or_else(String::new, |v| format!(" (version {v})"));
        findings.push(
            Finding::error(
                Code::GovernedFileDeleted,
                Some(p.as_str()),
                format!("removed without approval: an ancestor commit had {p}{was}, this revision does not, and no approved state/snapshot.json matching this revision approves the removal"),
            )
            .help("retire a document with an approved version whose status says so; to remove it, the snapshot role approves a new snapshot (`treaty snapshot`) of the state without it"),
        );
    }
}

/// Rollback and equivocation against everything the ancestors committed at `p`: the version
/// must not be lower than the highest one committed there, and at that version the bytes must
/// be bytes committed there at it (docs/spec.md § Rollback).
fn check_history(
    h: &crate::source::history::History,
    p: &RepoPath,
    tree: &Tree,
    bytes: &[u8],
    version: u64,
    findings: &mut Vec<Finding>,
) {
    let Some(mark) = h.mark(p) else { return };
    let Some(high) = mark.version else { return };
    let path = p.as_str();
    if version < high {
        findings.push(
            Finding::error(
                Code::VersionRollback,
                Some(path),
                format!("version {version} is lower than version {high}, which an ancestor commit had at this path"),
            )
            .help("versions only go up, even across a removal; to undo a change, publish its old content under a new, higher version"),
        );
    } else if version == high {
        let id = tree
            .blob_ids
            .get(p)
            .copied()
            .or_else(|| git2::Oid::hash_object(git2::ObjectType::Blob, bytes).ok());
        if id.is_none_or(|id| !mark.blobs.contains(&id)) {
            findings.push(
                Finding::error(
                    Code::VersionEquivocation,
                    Some(path),
                    format!("version {version} is the highest an ancestor commit had at this path, but with other content"),
                )
                .help("every change of content needs a higher version"),
            );
        }
    }
}

/// The approved TSA roots, when any approval in `tree` carries a timestamp.
fn tsa_roots_for(ctx: &Context) -> Option<crate::tsp::Roots> {
    let tree = ctx.tree;
    if !tree.entries.keys().any(|p| p.stamped_envelope().is_some()) {
        return None;
    }
    let p = RepoPath::new(crate::governance::TSA_ROOTS_PATH).ok()?;
    let e = tree.entries.get(&p)?;
    let v = judge_file(&p, e, ctx);
    if !v.approved {
        return None;
    }
    crate::tsp::Roots::from_pem(&tree.read(&p).ok()?).ok()
}

/// The revocations that apply to the approval at `sig_path`: with a valid timestamp
/// (`x.sig.tsr` over the envelope's bytes), retirements after its genTime do not; a
/// compromise always does. Findings explain what the timestamp did.
fn revocations_for(
    path: &str,
    sig_path: &RepoPath,
    tree: &Tree,
    trust: &Trust,
    tsa: Option<&crate::tsp::Roots>,
    findings: &mut Vec<Finding>,
) -> HashMap<String, Revocation> {
    let stamp_path = sig_path.stamp_path();
    let Some(token) = tree.file(stamp_path.as_str()) else {
        return trust.revoked.clone();
    };
    if path == crate::governance::TSA_ROOTS_PATH {
        return trust.revoked.clone();
    }
    let Some(roots) = tsa else {
        findings.push(Finding::warning(
            Code::TimestampInvalid,
            Some(stamp_path.as_str()),
            "ignored: keys/tsa-roots.pem is absent or not approved, so no timestamp can be trusted",
        ));
        return trust.revoked.clone();
    };
    let envelope = tree.file(sig_path.as_str()).unwrap_or_default();
    match crate::tsp::verify_response(&token, &envelope, None, roots) {
        Ok(stamp) => {
            let effective =
                crate::approval::effective_revocations(&trust.revoked, Some(stamp.gen_time));
            for (kid, r) in &trust.revoked {
                if !effective.contains_key(kid) {
                    findings.push(Finding::warning(
                        Code::RetiredKeyTimestamped,
                        Some(stamp_path.as_str()),
                        format!(
                            "key {kid} was retired at {}, after this approval was timestamped at {} by {}; its signature still counts",
                            r.time, stamp.time, stamp.tsa
                        ),
                    ));
                }
            }
            effective
        }
        Err(e) => {
            let why = if e == crate::tsp::TspError::WrongImprint {
                "it covers an earlier version of the envelope (signatures were added or changed since); run `treaty timestamp` again".to_owned()
            } else {
                e.to_string()
            };
            findings.push(Finding::warning(
                Code::TimestampInvalid,
                Some(stamp_path.as_str()),
                format!("ignored: {why}"),
            ));
            trust.revoked.clone()
        }
    }
}

/// A file one member could sign to move it toward approval (`treaty status --pending`).
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// What the signer must add for the signature to count (an expired approval needs a new
    /// `--expires`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The groups this member would sign for, with (have, need).
    pub groups: Vec<PendingGroup>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingGroup {
    pub name: String,
    pub signed: usize,
    pub threshold: usize,
    /// Who may still sign for this group.
    pub may_sign: Vec<String>,
}

/// The files in `report` that `member` could sign to move toward approval: not approved, held
/// back only by findings a signature can clear, with a required group below its threshold that
/// lists `member` among those who may still sign. Files blocked by anything else are left out
/// (signing them would not help; `treaty status` shows why).
pub fn pending_for(report: &Report, member: &str) -> Vec<Pending> {
    pending(report)
        .into_iter()
        .filter_map(|mut p| {
            p.groups.retain(|g| g.may_sign.iter().any(|m| m == member));
            (!p.groups.is_empty()).then_some(p)
        })
        .collect()
}

/// Every file a signature would move toward approval, each with its groups below threshold and
/// who may still sign for each. When the envelope no longer matches the file (its bytes,
/// version or groups changed, or there is none) every earlier signature is stale: each group
/// starts again from zero and all its members may sign.
pub fn pending(report: &Report) -> Vec<Pending> {
    // Nothing a signature could approve while the state itself is broken (no usable root, an
    // expired or unchained root): those are fixed by a root update, not by signing documents.
    if report.trust.is_none()
        || report
            .findings
            .iter()
            .any(|f| f.is_error() && !f.code.fixed_by_signing())
    {
        return Vec::new();
    }
    let restart = |c: Code| {
        matches!(
            c,
            Code::DigestMismatch
                | Code::StatementVersionMismatch
                | Code::StatementGroupsMismatch
                | Code::SignatureMissing
                | Code::ApprovalExpired
        )
    };
    let mut out = Vec::new();
    for v in report.files.iter().filter(|v| !v.approved) {
        let errors: Vec<&Finding> = v.findings.iter().filter(|f| f.is_error()).collect();
        if !errors.iter().all(|f| f.code.fixed_by_signing()) {
            continue;
        }
        let stale = errors.iter().any(|f| restart(f.code));
        let groups: Vec<PendingGroup> = v
            .groups
            .iter()
            .filter(|g| stale || !g.met)
            .map(|g| {
                let (signed, may_sign) = if stale {
                    let mut all: Vec<String> =
                        g.signed.iter().chain(&g.may_sign).cloned().collect();
                    all.sort();
                    all.dedup();
                    (0, all)
                } else {
                    (g.signed.len(), g.may_sign.clone())
                };
                PendingGroup {
                    name: g.name.clone(),
                    signed,
                    threshold: g.threshold,
                    may_sign,
                }
            })
            .collect();
        if !groups.is_empty() {
            let expired = errors.iter().any(|f| f.code == Code::ApprovalExpired);
            out.push(Pending {
                path: v.path.clone(),
                version: v.version,
                note: expired.then(|| {
                    "its approval expired: sign with --expires LATER (a new approval)".to_owned()
                }),
                groups,
            });
        }
    }
    out
}

/// Why a tree entry cannot be judged as a document: too large, a symlink, or not a regular
/// file. One rule for every command that reads documents (verify, validate, sign), from git
/// objects or the work tree alike.
pub fn entry_finding(path: &str, e: &Entry) -> Option<Finding> {
    let (code, msg) = match e {
        Entry::File(_) | Entry::Blob(_) => return None,
        Entry::TooLarge(n) => (
            Code::FileTooLarge,
            format!("{n} bytes, over the 16 MiB limit"),
        ),
        Entry::Symlink => (
            Code::Symlink,
            "symlinks are not allowed under governed folders (they could point anywhere)"
                .to_owned(),
        ),
        _ => (
            Code::NotAFile,
            "not a regular file (a submodule or special entry)".to_owned(),
        ),
    };
    Some(Finding::error(code, Some(path), msg))
}

/// Names in a tree that are not valid repository paths (not UTF-8, not NFC, `..`, …): one
/// finding each. Shared by verify and validate.
pub fn name_findings(tree: &Tree) -> Vec<Finding> {
    tree.bad_names
        .iter()
        .map(|(name, why)| {
            Finding::error(
                Code::PathInvalid,
                Some(name),
                format!("invalid path: {why}"),
            )
        })
        .collect()
}

/// What every file of one run is judged with.
struct Context<'a> {
    tree: &'a Tree,
    parent: Option<&'a Tree>,
    trust: Option<&'a Trust>,
    schemas: &'a Schemas,
    opts: &'a Options,
    /// The approved TSA roots, when some approval carries a timestamp.
    tsa: Option<&'a crate::tsp::Roots>,
}

/// The schemas of one run, by path, compiled once (or why one could not be).
type Schemas = HashMap<&'static str, Result<Compiled, schema::SchemaError>>;

/// A step that ended the file's judgement: its findings are in the verdict.
struct Stop;

/// One file's verdict, in steps (docs/spec.md § 6): read, who decides, parse and header,
/// schema, approval, rollback. A step that finds the file cannot be judged further stops.
fn judge_file(p: &RepoPath, e: &Entry, ctx: &Context) -> FileVerdict {
    let kind = FileKind::of(p);
    let mut v = FileVerdict {
        path: p.as_str().to_owned(),
        kind: kind.name().to_owned(),
        version: None,
        approved: false,
        governed_by: None,
        groups: vec![],
        findings: vec![],
        approval_expires: None,
    };
    let _ = judge_steps(p, e, kind, ctx, &mut v);
    if v.findings.iter().any(Finding::is_error) {
        v.approved = false;
    }
    v
}

fn judge_steps(
    p: &RepoPath,
    e: &Entry,
    kind: FileKind,
    ctx: &Context,
    v: &mut FileVerdict,
) -> Result<(), Stop> {
    let bytes = read_step(p, e, ctx.tree, v)?;
    let Some(trust) = ctx.trust else {
        v.findings.push(Finding::error(
            Code::RootMissing,
            Some(p.as_str()),
            "no usable root of trust, so nothing can be approved",
        ));
        return Err(Stop);
    };
    // Which groups decide, before anything else: an uncovered file is rejected as such.
    let delegation = delegation_step(p, kind, trust, v)?;
    let (value, version) = header_step(p, kind, &bytes, v)?;
    if kind != FileKind::Group {
        v.version = Some(version);
    }
    schema_step(p, kind, &value, &bytes, ctx.schemas, v);
    match kind {
        FileKind::Root | FileKind::RootVersion(_) => root_approval(p, trust, v),
        FileKind::Group => group_approval(p, trust, v),
        _ => {
            if let Some(d) = delegation {
                delegated_approval(p, &bytes, version, d, trust, ctx, v);
            }
        }
    }
    if kind != FileKind::Group {
        rollback_step(p, kind, &bytes, version, ctx, v);
    }
    Ok(())
}

/// Step 1: the entry is a regular file of bounded size that can be read.
fn read_step(p: &RepoPath, e: &Entry, tree: &Tree, v: &mut FileVerdict) -> Result<Vec<u8>, Stop> {
    let path = p.as_str();
    match tree.read(p) {
        Ok(b) => Ok(b.to_vec()),
        Err(ReadError::Git(m)) => {
            // Recorded in the tree too: the caller reports that it could not judge (exit 2).
            v.findings.push(Finding::error(
                Code::NotAFile,
                Some(path),
                format!("cannot read: {m}"),
            ));
            Err(Stop)
        }
        // A blob's size is known only when it is read: judge what the read found.
        Err(ReadError::TooLarge(n)) => {
            v.findings.extend(entry_finding(path, &Entry::TooLarge(n)));
            Err(Stop)
        }
        Err(ReadError::NotAFile) => {
            v.findings
                .extend(entry_finding(path, e).or_else(|| entry_finding(path, &Entry::NotAFile)));
            Err(Stop)
        }
    }
}

/// Step 2: the delegation that covers the path (none for the root chain and groups, which
/// the root itself governs); a kind treaty cannot read stops here.
fn delegation_step<'t>(
    p: &RepoPath,
    kind: FileKind,
    trust: &'t Trust,
    v: &mut FileVerdict,
) -> Result<Option<&'t CompiledDelegation>, Stop> {
    let path = p.as_str();
    let delegation = if trust::is_trust_file(p) {
        None
    } else if let Some(d) = trust.delegation_for(path) {
        Some(d)
    } else {
        v.findings.push(
            Finding::error(Code::UncoveredFile, Some(path), "no delegation in keys/root.json covers this path")
                .help("add a delegation for it with a root update, or move it out of the governed folders"),
        );
        return Err(Stop);
    };
    if kind == FileKind::Unsupported {
        v.findings.push(Finding::error(
            Code::UnsupportedKind,
            Some(path),
            "treaty cannot read a version from this kind of file; governed files are JSON (treaties/*.json, policies/*.json, keys/…) , gates/*.toml or schemas/*.schema.json",
        ));
        return Err(Stop);
    }
    Ok(delegation)
}

/// Step 3: the document parses (no duplicate key) and its header names a supported
/// `spec_version` and a `version`. Groups carry no version of their own: the root's pin is
/// their version (0 here).
fn header_step(
    p: &RepoPath,
    kind: FileKind,
    bytes: &[u8],
    v: &mut FileVerdict,
) -> Result<(serde_json::Value, u64), Stop> {
    let path = p.as_str();
    let value = schema::parse(kind, bytes).map_err(|issue| {
        let code = if issue.duplicate_key.is_some() {
            Code::DuplicateKey
        } else {
            Code::ParseError
        };
        v.findings
            .push(Finding::error(code, Some(path), issue.message).at(issue.line, issue.column));
        Stop
    })?;
    if kind == FileKind::Group {
        if let Some(sv) = value.get("spec_version").and_then(|s| s.as_str()) {
            if let Err(m) = crate::governance::check_spec_version(sv) {
                v.findings.push(Finding::error(
                    Code::SpecVersionUnsupported,
                    Some(path),
                    m.to_string(),
                ));
            }
        }
        return Ok((value, 0));
    }
    match schema::header(&value) {
        Ok((_, version)) => Ok((value, version)),
        Err(issue) => {
            let code = if issue.pointer == "/spec_version"
                && value.get("spec_version").is_some_and(|s| s.is_string())
            {
                Code::SpecVersionUnsupported
            } else {
                Code::SchemaInvalid
            };
            let (l, c) = schema::locate(bytes, &issue.pointer)
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            v.findings.push(
                Finding::error(
                    code,
                    Some(path),
                    format!("{}: {}", issue.pointer, issue.message),
                )
                .at(l, c),
            );
            Err(Stop)
        }
    }
}

/// Step 4: the document against its kind's schema from the judged tree; a schema file must
/// itself compile.
fn schema_step(
    p: &RepoPath,
    kind: FileKind,
    value: &serde_json::Value,
    bytes: &[u8],
    schemas: &Schemas,
    v: &mut FileVerdict,
) {
    let path = p.as_str();
    let Some(sp) = kind.schema_path() else {
        if kind == FileKind::Schema {
            if let Err(m) = schema::compile(value) {
                v.findings.push(Finding::error(
                    Code::SchemaInvalid,
                    Some(path),
                    m.to_string(),
                ));
            }
        }
        return;
    };
    // Line numbers point into JSON text; TOML's converted value has none.
    let text = (kind != FileKind::Gates).then_some(bytes);
    match schemas.get(sp) {
        Some(Ok(c)) => {
            if kind == FileKind::Treaty {
                for issue in schema::treaty_rules(value, text) {
                    v.findings.push(
                        Finding::error(
                            Code::TreatyFailoverSelf,
                            Some(path),
                            format!("{}: {}", issue.pointer, issue.message),
                        )
                        .at(issue.line, issue.column),
                    );
                }
            }
            for issue in c.validate(value, text) {
                let at = if issue.pointer.is_empty() {
                    "/"
                } else {
                    &issue.pointer
                };
                v.findings.push(
                    Finding::error(
                        Code::SchemaInvalid,
                        Some(path),
                        format!("{at}: {}", issue.message),
                    )
                    .at(issue.line, issue.column),
                );
            }
        }
        Some(Err(m)) => v.findings.push(Finding::error(
            Code::SchemaMissing,
            Some(path),
            m.to_string(),
        )),
        None => v.findings.push(Finding::error(
            Code::SchemaMissing,
            Some(path),
            format!("{sp} is unavailable"),
        )),
    }
}

/// Step 5, root versions: judged while the chain was walked ([`trust::load`]).
fn root_approval(p: &RepoPath, trust: &Trust, v: &mut FileVerdict) {
    let path = p.as_str();
    v.governed_by = Some("root chain".into());
    match trust.root_files.get(path) {
        Some(j) => {
            v.groups = j.groups.clone();
            v.findings.extend(j.findings.iter().cloned());
            v.approved = j.approved && trust.chain_ok;
        }
        // Below the pinned anchor (history before the pin), or the pin itself.
        None => v.approved = trust.chain_ok,
    }
    if !trust.chain_ok && v.findings.iter().all(|f| !f.is_error()) {
        v.findings.push(Finding::error(
            Code::RootSignatureThreshold,
            Some(path),
            "the root chain did not verify (see the findings above)",
        ));
    }
}

/// Step 5, groups: approved by the root's pin of their `group_id`.
fn group_approval(p: &RepoPath, trust: &Trust, v: &mut FileVerdict) {
    let path = p.as_str();
    v.governed_by = Some("root pin".into());
    let name = p.file_name().trim_end_matches(".json");
    v.approved = trust.chain_ok
        && trust.groups.contains_key(name)
        && name != crate::governance::model::ROOT_GROUP;
    if let Some(why) = trust.broken_groups.get(name) {
        v.findings
            .push(Finding::error(Code::GroupInvalid, Some(path), why.clone()));
    } else if !trust.root.groups.contains_key(name) {
        v.findings.push(Finding::error(
            Code::GroupNotPinned,
            Some(path),
            format!("group {name:?} is not pinned by the root"),
        ));
    }
}

/// Step 5, every other document: its delegation's groups over `PATH.sig`
/// ([`judge_approval`]), with revocations narrowed by a valid timestamp.
fn delegated_approval(
    p: &RepoPath,
    bytes: &[u8],
    version: u64,
    d: &CompiledDelegation,
    trust: &Trust,
    ctx: &Context,
    v: &mut FileVerdict,
) {
    let path = p.as_str();
    v.governed_by = Some(format!("delegation {}", d.name));
    if let Some(problem) = &d.problem {
        v.findings.push(Finding::error(
            Code::DelegationInvalid,
            Some(path),
            problem.clone(),
        ));
        return;
    }
    let required: Vec<&Group> = d
        .groups
        .iter()
        .filter_map(|n| trust.groups.get(n))
        .collect();
    let refs = trust.group_refs(d).unwrap_or_default();
    let sig_path = p.sig_path();
    let revoked = revocations_for(path, &sig_path, ctx.tree, trust, ctx.tsa, &mut v.findings);
    let subject = Subject {
        path,
        sig_path: sig_path.as_str(),
        bytes,
        version,
        refs: &refs,
    };
    let rules = Rules {
        required: &required,
        revoked: &revoked,
        at: ctx.opts.at,
        exhaustive: ctx.opts.exhaustive,
    };
    let j = judge_approval(
        &subject,
        &rules,
        ctx.tree.file(sig_path.as_str()).as_deref(),
    );
    v.groups = j.groups;
    v.findings.extend(j.findings);
    v.approval_expires = j.expires;
    v.approved = j.approved && trust.chain_ok;
}

/// Step 6, rollback and equivocation: against every ancestor when the tree was read as a
/// revision, else (a tree built in memory) against the parent given.
fn rollback_step(
    p: &RepoPath,
    kind: FileKind,
    bytes: &[u8],
    version: u64,
    ctx: &Context,
    v: &mut FileVerdict,
) {
    let tree = ctx.tree;
    if let Some(h) = tree.history.as_deref() {
        check_history(h, p, tree, bytes, version, &mut v.findings);
        return;
    }
    let same_blob = ctx
        .parent
        .and_then(|t| t.blob_ids.get(p))
        .is_some_and(|o| tree.blob_ids.get(p) == Some(o));
    if same_blob {
        return;
    }
    let Some(old) = ctx.parent.and_then(|t| t.read(p).ok()) else {
        return;
    };
    if old.as_ref() == bytes {
        return;
    }
    let Ok((_, old_v)) = schema::parse(kind, &old).and_then(|val| schema::header(&val)) else {
        return;
    };
    let path = p.as_str();
    if version < old_v {
        v.findings.push(
            Finding::error(Code::VersionRollback, Some(path), format!("version {version} is lower than the parent commit's {old_v}"))
                .help("versions only go up; to undo a change, publish its old content under a new, higher version"),
        );
    } else if version == old_v {
        v.findings.push(
            Finding::error(Code::VersionEquivocation, Some(path), format!("version {version} is the same as in the parent commit, but the content differs"))
                .help("every change of content needs a higher version"),
        );
    }
}

#[cfg(test)]
#[allow(clippy::too_many_lines)]
mod tests {
    //! The per-file steps without a process (issue 15): one honest, approved treaty over the
    //! trust fixture (`trust::tests::Fx`: a rotated root, council and akash groups), then a
    //! table of single mutations, each with the exact finding codes the treaty's verdict must
    //! carry and whether it is approved (docs/spec.md § 6; docs/model.md § When a file is
    //! approved). The integration tests keep the CLI contract.
    use super::*;
    use crate::statement::GroupRef;
    use crate::trust::tests::{at, tree, Files, Fx, AT, EXPIRES};

    const TREATY: &str = "treaties/AURORA-AKASH-001.json";
    const BYTES: &[u8] = include_bytes!("../treaties/AURORA-AKASH-001.json");

    fn refs(fx: &Fx) -> Vec<GroupRef> {
        let (t, _) = crate::trust::load(&tree(&fx.files), &Anchor::Repository, at(AT));
        let t = t.expect("trust");
        t.group_refs(t.delegation_for(TREATY).expect("delegation"))
            .expect("refs")
    }

    /// The treaty at `path` with `bytes` at `version`, approved by `signers` until `expires`.
    fn put_treaty(
        fx: &Fx,
        files: &mut Files,
        path: &str,
        bytes: &[u8],
        version: u64,
        signers: &[&crate::crypto::SigningKey],
        expires: &str,
    ) {
        files.insert(path.into(), bytes.to_vec());
        let sig = crate::statement::approve(
            path,
            bytes,
            version,
            refs(fx),
            Some(expires.into()),
            signers,
        )
        .unwrap();
        files.insert(format!("{path}.sig"), sig);
    }

    /// The trust fixture plus the treaty schema and an honestly approved treaty.
    fn honest(fx: &Fx) -> Files {
        let mut files = fx.files.clone();
        let schema = crate::governance::schema::BUILTIN
            .iter()
            .find(|(n, _)| *n == "treaty.schema.json")
            .expect("builtin treaty schema")
            .1;
        files.insert(
            "schemas/treaty.schema.json".into(),
            schema.as_bytes().to_vec(),
        );
        put_treaty(
            fx,
            &mut files,
            TREATY,
            BYTES,
            1,
            &[&fx.c[0], &fx.akash],
            EXPIRES,
        );
        files
    }

    /// The treaty's bytes with `from` replaced by `to` (each must occur).
    fn edited(from: &str, to: &str) -> Vec<u8> {
        let text = std::str::from_utf8(BYTES).expect("utf-8");
        assert!(text.contains(from), "{from:?} not in the fixture treaty");
        text.replacen(from, to, 1).into_bytes()
    }

    /// The verdict on `path` in `files`, judged at AT, with `parent` as the parent tree.
    fn judge(files: &Files, parent: Option<&Files>, path: &str) -> Option<FileVerdict> {
        let mut t = tree(files);
        // As `source` reads a tree: a file over the limit is never inflated.
        for (p, b) in files {
            if b.len() as u64 > crate::governance::MAX_FILE_BYTES {
                let p = RepoPath::new(p).expect("path");
                t.entries.insert(p, Entry::TooLarge(b.len() as u64));
            }
        }
        let parent = parent.map(tree);
        let opts = Options {
            anchor: Anchor::Repository,
            at: at(AT),
            exhaustive: true,
        };
        let (trust, _) = trust::load(&t, &opts.anchor, opts.at);
        let schemas = compile_schemas(&t);
        let ctx = Context {
            tree: &t,
            parent: parent.as_ref(),
            trust: trust.as_ref(),
            schemas: &schemas,
            opts: &opts,
            tsa: None,
        };
        let p = RepoPath::new(path).expect("path");
        let e = t.entries.get(&p)?;
        Some(judge_file(&p, e, &ctx))
    }

    fn codes(v: &FileVerdict) -> Vec<Code> {
        let mut c: Vec<Code> = v.findings.iter().map(|f| f.code).collect();
        c.sort();
        c.dedup();
        c
    }

    struct Row {
        name: &'static str,
        /// Changes the honest files; may return a parent tree's files.
        mutate: fn(&Fx, &mut Files) -> Option<Files>,
        /// The path judged (the treaty unless moved).
        path: &'static str,
        codes: &'static [Code],
        approved: bool,
    }

    use Code::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                name: "honest",
                mutate: |_, _| None,
                path: TREATY,
                codes: &[],
                approved: true,
            },
            // --- read ---------------------------------------------------------------------------
            Row {
                name: "over the size limit",
                mutate: |_, f| {
                    f.insert(
                        TREATY.into(),
                        vec![b' '; crate::governance::MAX_FILE_BYTES as usize + 1],
                    );
                    None
                },
                path: TREATY,
                codes: &[FileTooLarge],
                approved: false,
            },
            // --- trust and delegation ------------------------------------------------------------
            Row {
                name: "no root of trust",
                mutate: |_, f| {
                    f.remove("keys/root.json");
                    None
                },
                path: TREATY,
                codes: &[RootMissing],
                approved: false,
            },
            Row {
                name: "a path no delegation covers",
                mutate: |fx, f| {
                    put_treaty(
                        fx,
                        f,
                        "treaties/AURORA-RENDER-001.json",
                        BYTES,
                        1,
                        &[&fx.c[0], &fx.akash],
                        EXPIRES,
                    );
                    None
                },
                path: "treaties/AURORA-RENDER-001.json",
                codes: &[UncoveredFile],
                approved: false,
            },
            // --- header and schema ---------------------------------------------------------------
            Row {
                name: "not JSON",
                mutate: |fx, f| {
                    put_treaty(
                        fx,
                        f,
                        TREATY,
                        b"{\"version\": 1,",
                        1,
                        &[&fx.c[0], &fx.akash],
                        EXPIRES,
                    );
                    None
                },
                path: TREATY,
                codes: &[ParseError],
                approved: false,
            },
            Row {
                name: "a duplicate key",
                mutate: |fx, f| {
                    let b = edited("\"version\": 1,", "\"version\": 1, \"version\": 1,");
                    put_treaty(fx, f, TREATY, &b, 1, &[&fx.c[0], &fx.akash], EXPIRES);
                    None
                },
                path: TREATY,
                codes: &[DuplicateKey],
                approved: false,
            },
            Row {
                name: "an unsupported spec_version",
                mutate: |fx, f| {
                    let b = edited("\"spec_version\": \"1.0\"", "\"spec_version\": \"2.0\"");
                    put_treaty(fx, f, TREATY, &b, 1, &[&fx.c[0], &fx.akash], EXPIRES);
                    None
                },
                path: TREATY,
                codes: &[SpecVersionUnsupported],
                approved: false,
            },
            Row {
                name: "signed, but against its schema",
                mutate: |fx, f| {
                    let b = edited("\"status\": \"active\"", "\"status\": \"bogus\"");
                    put_treaty(fx, f, TREATY, &b, 1, &[&fx.c[0], &fx.akash], EXPIRES);
                    None
                },
                path: TREATY,
                codes: &[SchemaInvalid],
                approved: false,
            },
            Row {
                name: "the tree carries no treaty schema (verification never falls back)",
                mutate: |_, f| {
                    f.remove("schemas/treaty.schema.json");
                    None
                },
                path: TREATY,
                codes: &[SchemaMissing],
                approved: false,
            },
            // --- approval ------------------------------------------------------------------------
            Row {
                name: "no envelope",
                mutate: |_, f| {
                    f.remove(&format!("{TREATY}.sig"));
                    None
                },
                path: TREATY,
                codes: &[SignatureMissing],
                approved: false,
            },
            Row {
                name: "the provider group has not signed",
                mutate: |fx, f| {
                    put_treaty(fx, f, TREATY, BYTES, 1, &[&fx.c[0], &fx.c[1]], EXPIRES);
                    None
                },
                path: TREATY,
                codes: &[ThresholdNotMet],
                approved: false,
            },
            Row {
                name: "changed after signing",
                mutate: |_, f| {
                    f.insert(
                        TREATY.into(),
                        edited("\"concurrent_jobs\": 64", "\"concurrent_jobs\": 65"),
                    );
                    None
                },
                path: TREATY,
                codes: &[DigestMismatch],
                approved: false,
            },
            Row {
                name: "the approval expired",
                mutate: |fx, f| {
                    put_treaty(
                        fx,
                        f,
                        TREATY,
                        BYTES,
                        1,
                        &[&fx.c[0], &fx.akash],
                        "2029-01-01T00:00:00Z",
                    );
                    None
                },
                path: TREATY,
                codes: &[ApprovalExpired],
                approved: false,
            },
            // --- rollback against the parent ---------------------------------------------------
            Row {
                name: "a lower version than the parent's",
                mutate: |fx, f| {
                    let mut parent = f.clone();
                    let b = edited("\"version\": 1,", "\"version\": 2,");
                    put_treaty(
                        fx,
                        &mut parent,
                        TREATY,
                        &b,
                        2,
                        &[&fx.c[0], &fx.akash],
                        EXPIRES,
                    );
                    Some(parent)
                },
                path: TREATY,
                codes: &[VersionRollback],
                approved: false,
            },
            Row {
                name: "the parent's version with other content",
                mutate: |fx, f| {
                    let mut parent = f.clone();
                    let b = edited("\"concurrent_jobs\": 64", "\"concurrent_jobs\": 65");
                    put_treaty(
                        fx,
                        &mut parent,
                        TREATY,
                        &b,
                        1,
                        &[&fx.c[0], &fx.akash],
                        EXPIRES,
                    );
                    Some(parent)
                },
                path: TREATY,
                codes: &[VersionEquivocation],
                approved: false,
            },
            Row {
                name: "a higher version than the parent's",
                mutate: |fx, f| {
                    let b = edited("\"version\": 1,", "\"version\": 2,");
                    let parent = f.clone();
                    put_treaty(fx, f, TREATY, &b, 2, &[&fx.c[0], &fx.akash], EXPIRES);
                    Some(parent)
                },
                path: TREATY,
                codes: &[],
                approved: true,
            },
        ]
    }

    #[test]
    fn each_step_rejects_its_class_and_the_honest_file_passes() {
        let fx = Fx::new();
        for row in rows() {
            let mut files = honest(&fx);
            let parent = (row.mutate)(&fx, &mut files);
            let v = judge(&files, parent.as_ref(), row.path)
                .unwrap_or_else(|| panic!("{}: {} is not in the tree", row.name, row.path));
            assert_eq!(codes(&v), row.codes, "{}: {:?}", row.name, v.findings);
            assert_eq!(v.approved, row.approved, "{}", row.name);
            // A verdict with an error finding is never approved.
            assert!(
                !v.approved || !v.findings.iter().any(Finding::is_error),
                "{}",
                row.name
            );
        }
    }

    /// The whole report agrees with the per-file steps: the honest treaty is approved in it,
    /// and a tree whose treaty lost its envelope is not approved as a whole.
    #[test]
    fn the_report_is_approved_only_when_every_file_is() {
        let fx = Fx::new();
        let files = honest(&fx);
        let opts = Options {
            anchor: Anchor::Repository,
            at: at(AT),
            exhaustive: false,
        };
        let r = verify_tree(&tree(&files), None, &opts);
        let treaty = r.files.iter().find(|v| v.path == TREATY).expect("judged");
        assert!(treaty.approved, "{:?}", treaty.findings);
        let mut broken = files.clone();
        broken.remove(&format!("{TREATY}.sig"));
        let r2 = verify_tree(&tree(&broken), None, &opts);
        assert!(!r2.approved);
        assert_eq!(r2.summary.approved + 1, r.summary.approved);
    }
}
