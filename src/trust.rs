//! The trust layer: root chain → pinned groups → delegations.
//!
//! Owns the answer to "which groups must approve this path, and are they the groups the root
//! pins?". It walks `keys/roots/1.json … N.json` from the anchor (the repository's first root,
//! or a root pinned with `--trust`), requiring each version N+1 to carry the threshold of
//! version N's root group *and* of its own (TUF §5.3.4 style), then loads and checks every
//! pinned group. It never judges ordinary files; [`crate::verify`] does, using what this
//! module returns. Everything it finds goes into findings; nothing panics, nothing is skipped.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::approval::{judge_approval, Judged, Rules, Subject};
use crate::diag::{Code, Finding};
use crate::glob::Glob;
use crate::governance::model::{
    Group, GroupFile, Revocation, RevocationReason, Root, ROLES, ROOT_GROUP,
};
use crate::governance::FileKind;
use crate::path::RepoPath;
use crate::source::Tree;
use crate::statement::GroupRef;
use crate::time::Instant;

/// The path every root statement names, whichever copy its envelope sits beside.
pub const ROOT_PATH: &str = "keys/root.json";

/// Where trust starts.
#[derive(Debug, Clone)]
pub enum Anchor {
    /// Trust-on-first-use: `keys/roots/1.json` of the repository judged, self-signed.
    Repository,
    /// A root obtained out of band (`--trust FILE`); the chain must contain it.
    Pinned(Box<Root>),
    /// A root group id obtained out of band (`--trust blake3:…`): trust starts at the earliest
    /// root version whose root group has this id, which must be approved by that group's own
    /// threshold (the id pins members and threshold, not the rest of the document).
    PinnedGroup(String),
}

/// A delegation ready to match.
#[derive(Debug, Clone)]
pub struct CompiledDelegation {
    pub name: String,
    pub globs: Vec<Glob>,
    pub groups: Vec<String>,
    /// A configuration error that makes every file it covers unapproved.
    pub problem: Option<String>,
}

/// What the trust layer established.
#[derive(Debug, Clone)]
pub struct Trust {
    pub root: Root,
    pub root_group: Group,
    /// Pinned groups that loaded and matched their pins, by name (the root group included).
    pub groups: BTreeMap<String, Group>,
    /// Pinned groups that failed, by name, with the reason.
    pub broken_groups: BTreeMap<String, String>,
    pub delegations: Vec<CompiledDelegation>,
    pub revoked: HashMap<String, Revocation>,
    /// The root chain verified from the anchor to the newest root, and it is unexpired.
    pub chain_ok: bool,
    /// Which root version trust was anchored at, and how.
    pub anchor_version: u64,
    /// `repository` (trust on first use), `pinned` (a root file) or `pinned-group` (a root
    /// group id).
    pub anchor_kind: &'static str,
    /// Per root file (`keys/root.json`, `keys/roots/N.json`): the verdict of its approval.
    pub root_files: BTreeMap<String, Judged>,
}

impl Trust {
    /// The first delegation whose pattern matches `path`.
    pub fn delegation_for(&self, path: &str) -> Option<&CompiledDelegation> {
        self.delegations
            .iter()
            .find(|d| d.globs.iter().any(|g| g.is_match(path)))
    }

    /// The group refs a statement for this delegation must name.
    pub fn group_refs(&self, d: &CompiledDelegation) -> Option<Vec<GroupRef>> {
        d.groups
            .iter()
            .map(|n| {
                self.groups.get(n).map(|g| GroupRef {
                    name: n.clone(),
                    group_id: g.group_id.clone(),
                })
            })
            .collect()
    }

    /// Is this key id revoked (for any reason)? Until approvals carry timestamps, a retired
    /// key counts for nothing, exactly like a compromised one.
    pub fn is_revoked(&self, keyid: &str) -> Option<RevocationReason> {
        self.revoked.get(keyid).map(|r| r.reason)
    }
}

fn parse_root(path: &str, bytes: &[u8]) -> Result<Root, Finding> {
    let root: Root = crate::json::from_slice(bytes).map_err(|e| {
        Finding::error(
            Code::RootInvalid,
            Some(path),
            format!("not a valid root: {e}"),
        )
        .at(e.line(), e.column())
    })?;
    crate::governance::check_spec_version(&root.spec_version)
        .map_err(|m| Finding::error(Code::SpecVersionUnsupported, Some(path), m.to_string()))?;
    Ok(root)
}

fn root_group_of(path: &str, root: &Root) -> Result<Group, Finding> {
    Group::validate(ROOT_GROUP, &root.root_group).map_err(|e| {
        let code = if matches!(
            e,
            crate::governance::model::GroupError::GroupIdMismatch { .. }
        ) {
            Code::GroupIdMismatch
        } else {
            Code::RootInvalid
        };
        Finding::error(code, Some(path), format!("root group: {e}"))
    })
}

/// Establishes trust in `tree`, judged as of `at`. Returns `None` only when there is no
/// readable root at all; otherwise a [`Trust`] whose `chain_ok` says whether it may approve.
///
/// In steps (docs/spec.md § 5): the newest root; the kept versions, contiguous and parsed; the
/// anchor; every version from the anchor approved by its predecessor's root group and its own;
/// the newest root's expiry; then its groups, delegations and roles.
pub fn load(tree: &Tree, anchor: &Anchor, at: Instant) -> (Option<Trust>, Vec<Finding>) {
    let (root_bytes, newest, newest_group) = match read_newest(tree) {
        Ok(x) => x,
        Err(f) => return (None, vec![f]),
    };
    let mut w = Walk {
        tree,
        at,
        findings: Vec::new(),
        chain_ok: true,
        revoked: newest
            .revoked
            .iter()
            .map(|r| (r.keyid.clone(), r.clone()))
            .collect(),
        root_files: BTreeMap::new(),
    };
    let owned_versions = kept_versions(tree);
    let versions: BTreeMap<u64, &[u8]> = owned_versions
        .iter()
        .map(|(n, b)| (*n, b.as_ref()))
        .collect();
    let max = newest.version;
    w.check_contiguous(&versions, max, &root_bytes);
    let roots = w.parse_versions(&versions);
    let start = w.anchor_start(anchor, &roots, max);
    w.walk_chain(&versions, &roots, anchor, start, max);
    // keys/root.json.sig must approve the newest root exactly as keys/roots/N.json.sig does.
    let prev = max
        .checked_sub(1)
        .and_then(|p| roots.get(&p))
        .map(|(_, g)| g);
    let j = w.judge_root(ROOT_PATH, max, &root_bytes, &newest_group, prev);
    if !j.approved {
        w.fail(Finding::error(
            Code::RootSignatureThreshold,
            Some(ROOT_PATH),
            format!("keys/root.json is not approved: {}", j.summary()),
        ));
    }
    w.root_files.insert(ROOT_PATH.to_owned(), j);
    if let Some(f) = expiry_finding(&newest, at) {
        w.fail(f);
    }

    let mut findings = w.findings;
    let (groups, broken_groups, mut gfind) = load_groups(tree, &newest, &newest_group);
    findings.append(&mut gfind);
    let (delegations, mut dfind) = compile_delegations(&newest, &groups, &broken_groups);
    findings.append(&mut dfind);
    findings.extend(role_findings(&newest));
    findings.extend(agent_key_findings(&newest, &newest_group, &groups));
    let trust = Trust {
        revoked: w.revoked,
        root: newest,
        root_group: newest_group,
        groups,
        broken_groups,
        delegations,
        chain_ok: w.chain_ok,
        anchor_version: start,
        anchor_kind: match anchor {
            Anchor::Repository => "repository",
            Anchor::Pinned(_) => "pinned",
            Anchor::PinnedGroup(_) => "pinned-group",
        },
        root_files: w.root_files,
    };
    (Some(trust), findings)
}

/// `keys/root.json`, parsed, with its root group.
fn read_newest(tree: &Tree) -> Result<(Vec<u8>, Root, Group), Finding> {
    let Some(root_bytes) = tree.file(ROOT_PATH) else {
        return Err(Finding::error(
            Code::RootMissing,
            Some(ROOT_PATH),
            "no root of trust at this revision",
        )
        .help("run `treaty init` to scaffold a governance repository"));
    };
    let newest = parse_root(ROOT_PATH, &root_bytes)?;
    let group = root_group_of(ROOT_PATH, &newest)?;
    Ok((root_bytes.to_vec(), newest, group))
}

/// The kept versions, `keys/roots/N.json`, by N.
fn kept_versions(tree: &Tree) -> BTreeMap<u64, std::borrow::Cow<'_, [u8]>> {
    tree.entries
        .keys()
        .filter_map(|p| match FileKind::of(p) {
            FileKind::RootVersion(n) => tree.read(p).ok().map(|b| (n, b)),
            _ => None,
        })
        .collect()
}

/// The root chain's walk: its findings, whether it holds so far, and each version's verdict.
struct Walk<'t> {
    tree: &'t Tree,
    at: Instant,
    findings: Vec<Finding>,
    chain_ok: bool,
    /// The newest root's revocations: they apply to every version's approval.
    revoked: HashMap<String, Revocation>,
    root_files: BTreeMap<String, Judged>,
}

impl Walk<'_> {
    /// A finding that breaks the chain.
    fn fail(&mut self, f: Finding) {
        self.chain_ok = false;
        self.findings.push(f);
    }

    /// Versions 1..=max are all kept, and the newest is `keys/root.json` byte for byte.
    fn check_contiguous(&mut self, versions: &BTreeMap<u64, &[u8]>, max: u64, root_bytes: &[u8]) {
        if !versions.keys().copied().eq(1..=max) {
            let have: Vec<String> = versions.keys().map(u64::to_string).collect();
            self.fail(
                Finding::error(
                    Code::RootChainBroken,
                    Some("keys/roots"),
                    format!(
                        "keys/roots/ must hold versions 1..={max} with none missing; found [{}]",
                        have.join(", ")
                    ),
                )
                .help("every root version stays in keys/roots/N.json forever; restore the missing ones from history"),
            );
        } else if versions.get(&max).copied() != Some(root_bytes) {
            self.fail(Finding::error(
                Code::RootChainBroken,
                Some(ROOT_PATH),
                format!(
                    "keys/root.json differs from keys/roots/{max}.json, its newest kept version"
                ),
            ));
        }
    }

    /// Every kept version parsed, named for its own version, with a valid root group.
    fn parse_versions(&mut self, versions: &BTreeMap<u64, &[u8]>) -> BTreeMap<u64, (Root, Group)> {
        let mut roots = BTreeMap::new();
        for (&n, bytes) in versions {
            let path = format!("keys/roots/{n}.json");
            let parsed = parse_root(&path, bytes).and_then(|r| {
                if r.version != n {
                    return Err(Finding::error(
                        Code::RootChainBroken,
                        Some(&path),
                        format!(
                            "file says version {} but is named for version {n}",
                            r.version
                        ),
                    ));
                }
                root_group_of(&path, &r).map(|g| (r, g))
            });
            match parsed {
                Ok(x) => {
                    roots.insert(n, x);
                }
                Err(f) => self.fail(f),
            }
        }
        roots
    }

    /// The version trust starts from: 1, a pinned root (which must be this repository's), or
    /// the first version with a pinned root group.
    fn anchor_start(
        &mut self,
        anchor: &Anchor,
        roots: &BTreeMap<u64, (Root, Group)>,
        max: u64,
    ) -> u64 {
        match anchor {
            Anchor::Repository => 1,
            Anchor::Pinned(p) => {
                let v = p.version;
                if !matches!(roots.get(&v), Some((r, _)) if r == p.as_ref()) {
                    self.fail(
                        Finding::error(
                            Code::RootNotPinned,
                            Some(&format!("keys/roots/{v}.json")),
                            format!("the pinned root (version {v}) is not this repository's root version {v}"),
                        )
                        .help("this repository does not descend from the root you trust; do not use it"),
                    );
                }
                if v > max {
                    self.fail(Finding::error(
                        Code::RootNotPinned,
                        Some(ROOT_PATH),
                        format!("the pinned root is version {v}, newer than this repository's version {max} (rollback)"),
                    ));
                }
                v
            }
            // The earliest version with this root group; judged with that group's own
            // threshold, like a genesis root.
            Anchor::PinnedGroup(id) => match roots.iter().find(|(_, (_, g))| g.group_id == *id) {
                Some((n, _)) => *n,
                None => {
                    self.fail(
                        Finding::error(
                            Code::RootNotPinned,
                            Some("keys/roots"),
                            format!("no root version of this repository has the pinned root group {id}"),
                        )
                        .help("this repository does not descend from the root group you trust; do not use it"),
                    );
                    1
                }
            },
        }
    }

    /// Version n's approval: the threshold of its own root group and, when it rotated the
    /// group, of the previous version's (docs/spec.md § 5.1).
    fn judge_root(
        &self,
        file: &str,
        n: u64,
        bytes: &[u8],
        own: &Group,
        prev: Option<&Group>,
    ) -> Judged {
        let mut required: Vec<&Group> = vec![own];
        if let Some(p) = prev.filter(|p| p.group_id != own.group_id) {
            required.insert(0, p);
        }
        let refs: Vec<GroupRef> = required
            .iter()
            .map(|g| GroupRef {
                name: ROOT_GROUP.into(),
                group_id: g.group_id.clone(),
            })
            .collect();
        let sig_path = format!("{file}.sig");
        let subject = Subject {
            path: ROOT_PATH,
            sig_path: &sig_path,
            bytes,
            version: n,
            refs: &refs,
        };
        let rules = Rules {
            required: &required,
            revoked: &self.revoked,
            at: self.at,
            exhaustive: true,
        };
        judge_approval(&subject, &rules, self.tree.file(&sig_path).as_deref())
    }

    /// Every kept version from the anchor on, approved by its predecessor's root group and its
    /// own.
    fn walk_chain(
        &mut self,
        versions: &BTreeMap<u64, &[u8]>,
        roots: &BTreeMap<u64, (Root, Group)>,
        anchor: &Anchor,
        start: u64,
        max: u64,
    ) {
        // Over the versions that exist, never a loop over `1..=max`: `max` is the unsigned
        // newest root's claim, and a claim of 2^64 - 1 must not become 2^64 loop turns (a
        // missing version was reported as a broken chain); and `..=max`, since `1..=0` panics.
        if start > max {
            return;
        }
        for (&n, bytes) in versions.range(start..=max) {
            let path = format!("keys/roots/{n}.json");
            let Some((_, own)) = roots.get(&n) else {
                continue;
            };
            // At a pinned group's first version the approval was made (and is bound) for both
            // the previous root group and its own, so both thresholds are still required: the
            // pinned group's is what trust rests on, the previous one's only makes the check
            // stricter. A pinned root *file* is trusted by its content (compared with the pin);
            // its envelope is judged all the same — an entry nothing reads would be an entry
            // nobody judges — and, like every root version's, under the previous version's root
            // group too when it rotated the group: its statement names both (docs/spec.md
            // § 5.1). Judged under its own group alone, every honest rotation was refused, and
            // so was every gate after one, since the gate pins the base's root.
            let prev = if n == start && (n == 1 || matches!(anchor, Anchor::Repository)) {
                None
            } else {
                roots.get(&(n - 1)).map(|(_, g)| g)
            };
            if n > start && prev.is_none() {
                self.chain_ok = false;
                continue;
            }
            let mut j = self.judge_root(&path, n, bytes, own, prev);
            if n < max {
                // Superseded root versions are history: as in TUF, only the newest root's
                // expiry (and its approval's) is judged, so a chain stays walkable years later.
                j.findings.retain(|f| f.code != Code::ApprovalExpired);
                j.approved = !j.findings.iter().any(Finding::is_error);
            }
            if !j.approved {
                let mut f = Finding::error(
                    Code::RootSignatureThreshold,
                    Some(&path),
                    format!("root version {n} is not approved: {}", j.summary()),
                );
                if n > 1 {
                    f = f.help(format!(
                        "a new root needs the threshold of root version {}'s group and of its own; have both groups sign with `treaty sign keys/root.json`",
                        n - 1
                    ));
                }
                self.fail(f);
            }
            self.root_files.insert(path, j);
        }
    }
}

/// Only the newest root's expiry matters (older ones are history).
fn expiry_finding(newest: &Root, at: Instant) -> Option<Finding> {
    match crate::time::parse(&newest.expires) {
        Ok(exp) if at >= exp => Some(
            Finding::error(
                Code::RootExpired,
                Some(ROOT_PATH),
                format!("the root expired at {} (judged at {})", newest.expires, crate::time::format(at)),
            )
            .help("the root group must approve a new root version with a later expiry (`treaty root rotate`)"),
        ),
        Ok(_) => None,
        Err(m) => Some(Finding::error(
            Code::RootInvalid,
            Some(ROOT_PATH),
            format!("expires: {m}"),
        )),
    }
}

/// The `agent` group's keys are its own: none is also a key of the root group or of another
/// pinned group (a key in both would let an agent host approve files or sign the state the
/// role rules keep it from: docs/law.md § Receipts).
fn agent_key_findings(
    newest: &Root,
    root_group: &Group,
    groups: &BTreeMap<String, Group>,
) -> Vec<Finding> {
    use crate::governance::model::Role;
    let Some(agent) = newest.role_group(Role::Agent) else {
        return Vec::new();
    };
    let Some(g) = groups.get(agent) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let others = groups
        .iter()
        .filter(|(name, _)| name.as_str() != agent)
        .map(|(name, o)| (name.as_str(), o))
        .chain(std::iter::once((ROOT_GROUP, root_group)));
    for (name, o) in others {
        for m in &g.members {
            for k in m.keys() {
                if o.members
                    .iter()
                    .any(|x| x.keys().any(|y| y.bytes() == k.bytes()))
                {
                    out.push(Finding::error(
                        Code::RoleInvalid,
                        Some(ROOT_PATH),
                        format!(
                            "agent {:?}'s key {} is also a key of group {name:?}: the decision points' keys must be their own",
                            m.id,
                            k.key_id()
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// Every required role is filled, and every role named, by the root group or a pinned group;
/// the `agent` role shares no group with `snapshot`, `verdict` or `log`, nor is the root group.
fn role_findings(newest: &Root) -> Vec<Finding> {
    use crate::governance::model::Role;
    let mut out = Vec::new();
    if let Some(agent) = newest.role_group(Role::Agent) {
        if agent == ROOT_GROUP {
            out.push(Finding::error(
                Code::RoleInvalid,
                Some(ROOT_PATH),
                "role \"agent\" names the root group: agent hosts would hold root keys".to_owned(),
            ));
        }
        // An agent's key signs its receipt logs and nothing else: its group is in no
        // delegation (it approves no file: a provider's or the council's would let them
        // vouch for decisions never made) and fills no other role.
        for d in &newest.delegations {
            if d.groups.iter().any(|g| g == agent) {
                out.push(Finding::error(
                    Code::RoleInvalid,
                    Some(ROOT_PATH),
                    format!(
                        "role \"agent\" names group {agent:?}, which delegation {:?} also requires: the decision points' keys must approve no governed file; give the agents a group of their own",
                        d.name
                    ),
                ));
            }
        }
        for other in [Role::Orders, Role::Reputation, Role::Release] {
            if newest.role_group(other) == Some(agent) {
                out.push(Finding::error(
                    Code::RoleInvalid,
                    Some(ROOT_PATH),
                    format!(
                        "roles \"agent\" and {:?} are both group {agent:?}: an agent's key must sign its receipts and nothing else",
                        other.as_str()
                    ),
                ));
            }
        }
        for other in [Role::Snapshot, Role::Verdict, Role::Log] {
            if newest.role_group(other) == Some(agent) {
                out.push(Finding::error(
                    Code::RoleInvalid,
                    Some(ROOT_PATH),
                    format!(
                        "roles \"agent\" and {:?} are both group {agent:?}: one compromised agent host could sign the fleet's {} (docs/law.md § Receipts); give the agents a group of their own",
                        other.as_str(),
                        match other {
                            Role::Snapshot => "state and heartbeat, and freeze it",
                            Role::Verdict => "gate verdicts",
                            _ => "governance audit log",
                        }
                    ),
                ));
            }
        }
    }
    out.extend(role_filled_findings(newest));
    out
}

fn role_filled_findings(newest: &Root) -> Vec<Finding> {
    crate::governance::model::Role::ALL
        .iter()
        .map(|r| r.as_str())
        .filter(|role| ROLES.contains(role) || newest.roles.contains_key(*role))
        .filter_map(|role| match newest.roles.get(role) {
            Some(g) if g == ROOT_GROUP || newest.groups.contains_key(g) => None,
            Some(g) => Some(Finding::error(
                Code::RoleInvalid,
                Some(ROOT_PATH),
                format!("role {role:?} names group {g:?}, which the root does not pin"),
            )),
            None => Some(Finding::error(
                Code::RoleInvalid,
                Some(ROOT_PATH),
                format!("role {role:?} is not filled"),
            )),
        })
        .collect()
}

type Groups = (
    BTreeMap<String, Group>,
    BTreeMap<String, String>,
    Vec<Finding>,
);

/// The root group and every group the root pins (those that fail, with why), and a finding
/// for every group file the root does not pin.
fn load_groups(tree: &Tree, root: &Root, root_group: &Group) -> Groups {
    let mut groups = BTreeMap::new();
    let mut broken = BTreeMap::new();
    let mut findings = Vec::new();
    groups.insert(ROOT_GROUP.to_owned(), root_group.clone());
    for (name, pin) in &root.groups {
        match load_group(tree, name, pin) {
            Ok(g) => {
                groups.insert(name.clone(), g);
            }
            Err((code, msg)) => {
                let path = format!("keys/groups/{name}.json");
                findings.push(Finding::error(code, Some(&path), msg.clone()));
                broken.insert(name.clone(), msg);
            }
        }
    }
    for p in tree.entries.keys() {
        if FileKind::of(p) == FileKind::Group {
            let name = p.file_name().trim_end_matches(".json");
            if !root.groups.contains_key(name) {
                findings.push(
                    Finding::error(
                        Code::GroupNotPinned,
                        Some(p.as_str()),
                        format!("group {name:?} is not pinned by the root"),
                    )
                    .help("pin it with a root update (`treaty group create`), or remove the file"),
                );
            }
        }
    }
    (groups, broken, findings)
}

/// One pinned group: its file exists, parses, names itself, and hashes to the pin.
fn load_group(tree: &Tree, name: &str, pin: &str) -> Result<Group, (Code, String)> {
    let path = format!("keys/groups/{name}.json");
    if name == ROOT_GROUP || !crate::governance::model::valid_group_name(name) {
        return Err((
            Code::RootInvalid,
            format!("{name:?} is not a usable group name"),
        ));
    }
    let Some(bytes) = tree.file(&path) else {
        return Err((
            Code::GroupMissing,
            format!("the root pins group {name:?} but {path} is absent"),
        ));
    };
    let gf: GroupFile = crate::json::from_slice(&bytes)
        .map_err(|e| (Code::GroupInvalid, format!("not a valid group file: {e}")))?;
    crate::governance::check_spec_version(&gf.spec_version)
        .map_err(|m| (Code::SpecVersionUnsupported, m.to_string()))?;
    if gf.name != name {
        return Err((
            Code::GroupInvalid,
            format!("file says name {:?} but sits at {path}", gf.name),
        ));
    }
    match Group::from_file(&gf) {
        Ok(g) if g.group_id == pin => Ok(g),
        Ok(g) => Err((
            Code::GroupIdMismatch,
            format!(
                "group changed without a root update: its members and threshold hash to {}, but the root pins {pin}",
                g.group_id
            ),
        )),
        Err(e) => {
            let code = if matches!(e, crate::governance::model::GroupError::GroupIdMismatch { .. }) {
                Code::GroupIdMismatch
            } else {
                Code::GroupInvalid
            };
            Err((code, e.to_string()))
        }
    }
}

fn compile_delegations(
    root: &Root,
    groups: &BTreeMap<String, Group>,
    broken: &BTreeMap<String, String>,
) -> (Vec<CompiledDelegation>, Vec<Finding>) {
    let mut out = Vec::new();
    let mut findings = Vec::new();
    // `state/` (the snapshot and heartbeat) is approved by the group the root names for the
    // `snapshot` role, first, so no delegation can hand it to anyone else.
    if let Ok(glob) = Glob::new("state/**") {
        let (groups_, problem) = match root
            .roles
            .get(crate::governance::model::Role::Snapshot.as_str())
        {
            Some(g) if groups.contains_key(g) => (vec![g.clone()], None),
            Some(g) => (
                vec![g.clone()],
                Some(format!(
                    "the snapshot role names group {g:?}, which is not trusted"
                )),
            ),
            None => (
                vec![],
                Some(
                    "keys/root.json names no `snapshot` role, so state/ cannot be approved"
                        .to_owned(),
                ),
            ),
        };
        out.push(CompiledDelegation {
            name: "role snapshot".into(),
            globs: vec![glob],
            groups: groups_,
            problem,
        });
    }
    for d in &root.delegations {
        let mut problem = None;
        let mut globs = Vec::new();
        for p in &d.paths {
            match Glob::new(p) {
                Ok(g) => globs.push(g),
                Err(e) => {
                    let m = format!("delegation {:?}: pattern {p:?}: {e}", d.name);
                    findings.push(Finding::error(
                        Code::DelegationInvalid,
                        Some(ROOT_PATH),
                        m.clone(),
                    ));
                    problem = Some(m);
                }
            }
        }
        let mut seen_keys: HashMap<Vec<u8>, &str> = HashMap::new();
        let mut seen_members: HashMap<&str, &str> = HashMap::new();
        let mut names = HashSet::new();
        for gname in &d.groups {
            if !names.insert(gname) {
                let m = format!("delegation {:?} names group {gname:?} twice", d.name);
                findings.push(Finding::error(
                    Code::DelegationInvalid,
                    Some(ROOT_PATH),
                    m.clone(),
                ));
                problem = Some(m);
            }
            let Some(g) = groups.get(gname) else {
                let why = broken.get(gname).map_or_else(
                    || "the root does not pin it".to_owned(),
                    |r| format!("it is broken: {r}"),
                );
                let m = format!(
                    "delegation {:?} requires group {gname:?}, but {why}",
                    d.name
                );
                if !broken.contains_key(gname) {
                    findings.push(Finding::error(
                        Code::DelegationInvalid,
                        Some(ROOT_PATH),
                        m.clone(),
                    ));
                }
                problem = Some(m);
                continue;
            };
            for mem in &g.members {
                if let Some(other) = seen_members.insert(&mem.id, &g.name) {
                    if other != g.name {
                        let m = format!(
                            "delegation {:?}: member {:?} is in both {other:?} and {:?}; one person must not speak for both parties",
                            d.name, mem.id, g.name
                        );
                        findings.push(Finding::error(
                            Code::DelegationConflict,
                            Some(ROOT_PATH),
                            m.clone(),
                        ));
                        problem = Some(m);
                    }
                }
                for k in mem.keys() {
                    if let Some(other) = seen_keys.insert(k.bytes(), &g.name) {
                        if other != g.name {
                            let m = format!(
                                "delegation {:?}: key {} is in both {other:?} and {:?}; one key must not count for two groups",
                                d.name,
                                k.key_id(),
                                g.name
                            );
                            findings.push(Finding::error(
                                Code::DelegationConflict,
                                Some(ROOT_PATH),
                                m.clone(),
                            ));
                            problem = Some(m);
                        }
                    }
                }
            }
        }
        out.push(CompiledDelegation {
            name: d.name.clone(),
            globs,
            groups: d.groups.clone(),
            problem,
        });
    }
    (out, findings)
}

/// Is `p` a trust file, approved by the chain or by a pin rather than by a delegation?
pub fn is_trust_file(p: &RepoPath) -> bool {
    matches!(
        FileKind::of(p),
        FileKind::Root | FileKind::RootVersion(_) | FileKind::Group
    )
}

#[cfg(test)]
#[allow(clippy::too_many_lines)]
pub(crate) mod tests {
    //! The trust rules without a process (issue 15): one honest in-memory repository — a root
    //! rotated from version 1 to 2, two pinned groups, two delegations — then a table of
    //! single mutations, each with the exact finding codes `load` must produce (docs/spec.md
    //! § 5; docs/model.md § The root chain).
    use super::*;
    use crate::crypto::SigningKey;
    use crate::governance::model::{all_roles, Delegation};
    use crate::governance::model::{GroupBody, MemberEntry};
    use crate::json::pretty_bytes as json_bytes;
    use crate::source::Entry;
    use crate::statement::approve;

    pub(crate) type Files = BTreeMap<String, Vec<u8>>;

    pub(crate) const EXPIRES: &str = "2036-01-01T00:00:00Z";
    pub(crate) const AT: &str = "2030-01-01T00:00:00Z";
    const TREATY: &str = "treaties/AURORA-AKASH-001.json";

    pub(crate) fn key(id: &str) -> SigningKey {
        let seed = blake3::derive_key("treaty trust unit tests v1", id.as_bytes());
        SigningKey::deterministic(id, &seed).expect("deterministic key")
    }

    pub(crate) fn at(s: &str) -> Instant {
        crate::time::parse(s).expect("test timestamp")
    }

    pub(crate) fn tree(files: &Files) -> Tree {
        let mut t = Tree::default();
        for (p, b) in files {
            t.entries
                .insert(RepoPath::new(p).expect("path"), Entry::File(b.clone()));
        }
        t
    }

    fn group_file(name: &str, threshold: u64, keys: &[&SigningKey]) -> GroupFile {
        let body = GroupBody::new(
            name,
            threshold,
            keys.iter().map(|k| MemberEntry::for_key(k)).collect(),
        )
        .expect("group body");
        GroupFile {
            spec_version: crate::SPEC_VERSION.into(),
            name: name.into(),
            threshold,
            members: body.members,
            group_id: body.group_id,
        }
    }

    fn root_ref(r: &Root) -> GroupRef {
        GroupRef {
            name: ROOT_GROUP.into(),
            group_id: r.root_group.group_id.clone(),
        }
    }

    /// Root groups: version 1 is {root-1, root-2} 2-of-2; version 2 rotates root-1 out for
    /// root-3, {root-2, root-3} 2-of-2, approved by all three (both thresholds).
    pub(crate) struct Fx {
        pub(crate) r: [SigningKey; 3],
        pub(crate) c: [SigningKey; 2],
        pub(crate) akash: SigningKey,
        pub(crate) v1: Root,
        pub(crate) v2: Root,
        pub(crate) files: Files,
    }

    impl Fx {
        pub(crate) fn new() -> Fx {
            let r = [key("root-1"), key("root-2"), key("root-3")];
            let c = [key("council-1"), key("council-2")];
            let akash = key("akash-1");
            let mut files = Files::new();
            let council = group_file("council", 1, &[&c[0], &c[1]]);
            let akash_g = group_file("akash", 1, &[&akash]);
            let pins: BTreeMap<String, String> = [
                ("council".to_owned(), council.group_id.clone()),
                ("akash".to_owned(), akash_g.group_id.clone()),
            ]
            .into();
            files.insert("keys/groups/council.json".into(), json_bytes(&council));
            files.insert("keys/groups/akash.json".into(), json_bytes(&akash_g));
            let root = |version: u64, members: &[&SigningKey]| Root {
                spec_version: crate::SPEC_VERSION.into(),
                version,
                expires: EXPIRES.into(),
                root_group: GroupBody::new(
                    ROOT_GROUP,
                    2,
                    members.iter().map(|k| MemberEntry::for_key(k)).collect(),
                )
                .expect("root group"),
                groups: pins.clone(),
                delegations: vec![
                    Delegation {
                        name: "treaties-akash".into(),
                        paths: vec!["treaties/AURORA-AKASH-*".into()],
                        groups: vec!["council".into(), "akash".into()],
                    },
                    Delegation {
                        name: "governance-config".into(),
                        paths: vec!["keys/**".into(), "schemas/**".into()],
                        groups: vec![ROOT_GROUP.into()],
                    },
                ],
                roles: all_roles("council"),
                revoked: vec![],
            };
            let v1 = root(1, &[&r[0], &r[1]]);
            let v2 = root(2, &[&r[1], &r[2]]);
            let mut fx = Fx {
                r,
                c,
                akash,
                v1,
                v2,
                files,
            };
            let (v1, v2) = (fx.v1.clone(), fx.v2.clone());
            let s1 = fx.sign_root(&v1, &[&v1], &[0, 1], EXPIRES);
            put(&mut fx.files, &v1, s1);
            let s2 = fx.sign_root(&v2, &[&v1, &v2], &[0, 1, 2], EXPIRES);
            put(&mut fx.files, &v2, s2);
            fx
        }

        /// An approval of `root` naming the root groups of `groups`, by root keys `signers`.
        fn sign_root(
            &self,
            root: &Root,
            groups: &[&Root],
            signers: &[usize],
            exp: &str,
        ) -> Vec<u8> {
            let keys: Vec<&SigningKey> = signers.iter().map(|&i| &self.r[i]).collect();
            approve(
                ROOT_PATH,
                &json_bytes(root),
                root.version,
                groups.iter().map(|g| root_ref(g)).collect(),
                Some(exp.into()),
                &keys,
            )
            .unwrap()
        }

        /// Replaces the newest root (version 2) by `edit` of it, honestly approved.
        fn resign_v2(&self, files: &mut Files, edit: impl FnOnce(&mut Root)) {
            let mut v2 = self.v2.clone();
            edit(&mut v2);
            let sig = self.sign_root(&v2, &[&self.v1, &v2], &[0, 1, 2], EXPIRES);
            put(files, &v2, sig);
        }

        /// Version 3: version 2 with the same root group, so its statement names one group.
        fn v3(&self) -> Root {
            Root {
                version: 3,
                ..self.v2.clone()
            }
        }

        fn load(&self, files: &Files, anchor: &Anchor) -> (Option<Trust>, Vec<Finding>) {
            load(&tree(files), anchor, at(AT))
        }
    }

    /// Writes `root` as `keys/roots/N.json` and `keys/root.json`, each with `sig` beside it.
    fn put(files: &mut Files, root: &Root, sig: Vec<u8>) {
        let bytes = json_bytes(root);
        let n = root.version;
        files.insert(format!("keys/roots/{n}.json"), bytes.clone());
        files.insert(format!("keys/roots/{n}.json.sig"), sig.clone());
        files.insert(ROOT_PATH.into(), bytes);
        files.insert(format!("{ROOT_PATH}.sig"), sig);
    }

    fn codes(findings: &[Finding]) -> Vec<Code> {
        let mut c: Vec<Code> = findings.iter().map(|f| f.code).collect();
        c.sort();
        c.dedup();
        c
    }

    struct Row {
        name: &'static str,
        mutate: fn(&Fx, &mut Files),
        /// Every code `load` reports, exactly.
        codes: &'static [Code],
        chain_ok: bool,
    }

    use Code::*;

    fn rows() -> Vec<Row> {
        vec![
            // --- rotation: version N+1 needs N's threshold and its own ----------------------
            Row {
                name: "version 2 signed by the old root group only",
                mutate: |fx, f| {
                    let s = fx.sign_root(&fx.v2, &[&fx.v1, &fx.v2], &[0, 1], EXPIRES);
                    put(f, &fx.v2, s);
                },
                codes: &[RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "version 2 signed by the new root group only",
                mutate: |fx, f| {
                    let s = fx.sign_root(&fx.v2, &[&fx.v1, &fx.v2], &[1, 2], EXPIRES);
                    put(f, &fx.v2, s);
                },
                codes: &[RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "version 2's statement names only its own root group",
                mutate: |fx, f| {
                    let s = fx.sign_root(&fx.v2, &[&fx.v2], &[0, 1, 2], EXPIRES);
                    put(f, &fx.v2, s);
                },
                codes: &[RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "only keys/roots/2.json.sig lacks the old group",
                mutate: |fx, f| {
                    let s = fx.sign_root(&fx.v2, &[&fx.v1, &fx.v2], &[1, 2], EXPIRES);
                    f.insert("keys/roots/2.json.sig".into(), s);
                },
                codes: &[RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "only keys/root.json.sig lacks the old group",
                mutate: |fx, f| {
                    let s = fx.sign_root(&fx.v2, &[&fx.v1, &fx.v2], &[1, 2], EXPIRES);
                    f.insert("keys/root.json.sig".into(), s);
                },
                codes: &[RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "version 1 short of its own threshold",
                mutate: |fx, f| {
                    let s = fx.sign_root(&fx.v1, &[&fx.v1], &[0], EXPIRES);
                    f.insert("keys/roots/1.json.sig".into(), s);
                },
                codes: &[RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "the newest root revokes a key of the old root group (it counts for nothing, also in history)",
                mutate: |fx, f| {
                    let kid = fx.r[0].classical_public().key_id();
                    fx.resign_v2(f, |v2| {
                        v2.revoked.push(Revocation {
                            keyid: kid,
                            reason: RevocationReason::Retired,
                            time: "2029-01-01T00:00:00Z".into(),
                        })
                    });
                },
                codes: &[RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "version 3 keeps version 2's root group and names it once (twin)",
                mutate: |fx, f| {
                    let v3 = fx.v3();
                    let s = fx.sign_root(&v3, &[&v3], &[1, 2], EXPIRES);
                    put(f, &v3, s);
                },
                codes: &[],
                chain_ok: true,
            },
            // --- the chain's shape ----------------------------------------------------------
            Row {
                name: "a skipped root version (1 then 3, approved by 3's group)",
                mutate: |fx, f| {
                    let v3 = fx.v3();
                    let s = fx.sign_root(&v3, &[&v3], &[1, 2], EXPIRES);
                    f.remove("keys/roots/2.json");
                    f.remove("keys/roots/2.json.sig");
                    put(f, &v3, s);
                },
                codes: &[RootChainBroken],
                chain_ok: false,
            },
            Row {
                name: "version 1 missing",
                mutate: |_, f| {
                    f.remove("keys/roots/1.json");
                    f.remove("keys/roots/1.json.sig");
                },
                // keys/root.json.sig is then judged without the missing previous root group,
                // so the two groups its statement names no longer match.
                codes: &[RootChainBroken, RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "keys/root.json rolled back to version 1",
                mutate: |_, f| {
                    let (b, s) = (f["keys/roots/1.json"].clone(), f["keys/roots/1.json.sig"].clone());
                    f.insert(ROOT_PATH.into(), b);
                    f.insert(format!("{ROOT_PATH}.sig"), s);
                },
                codes: &[RootChainBroken],
                chain_ok: false,
            },
            Row {
                name: "keys/root.json differs from keys/roots/2.json by one byte",
                mutate: |_, f| {
                    if let Some(b) = f.get_mut(ROOT_PATH) {
                        b.insert(0, b' ');
                    }
                },
                // The approval of keys/root.json is over the other bytes too.
                codes: &[RootChainBroken, RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "keys/roots/1.json says it is version 2",
                mutate: |fx, f| {
                    let mut v = fx.v1.clone();
                    v.version = 2;
                    f.insert("keys/roots/1.json".into(), json_bytes(&v));
                },
                // As above: version 1 is unusable, so keys/root.json.sig mismatches too.
                codes: &[RootChainBroken, RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "no keys/root.json",
                mutate: |_, f| {
                    f.remove(ROOT_PATH);
                },
                codes: &[RootMissing],
                chain_ok: false,
            },
            Row {
                name: "keys/root.json is not a root",
                mutate: |_, f| {
                    f.insert(ROOT_PATH.into(), b"{}".to_vec());
                },
                codes: &[RootInvalid],
                chain_ok: false,
            },
            // --- expiry: only the newest root's ---------------------------------------------
            Row {
                name: "the newest root has expired",
                mutate: |fx, f| fx.resign_v2(f, |v2| v2.expires = "2029-12-31T23:59:59Z".into()),
                codes: &[RootExpired],
                chain_ok: false,
            },
            Row {
                name: "the newest root expires exactly at the judging time",
                mutate: |fx, f| fx.resign_v2(f, |v2| v2.expires = AT.into()),
                codes: &[RootExpired],
                chain_ok: false,
            },
            Row {
                name: "the newest root's approval has expired",
                mutate: |fx, f| {
                    let s = fx.sign_root(&fx.v2, &[&fx.v1, &fx.v2], &[0, 1, 2], "2029-01-01T00:00:00Z");
                    put(f, &fx.v2, s);
                },
                codes: &[RootSignatureThreshold],
                chain_ok: false,
            },
            Row {
                name: "a superseded root has expired (history; twin)",
                mutate: |fx, f| {
                    let mut v1 = fx.v1.clone();
                    v1.expires = "2029-01-01T00:00:00Z".into();
                    let s = fx.sign_root(&v1, &[&v1], &[0, 1], EXPIRES);
                    f.insert("keys/roots/1.json".into(), json_bytes(&v1));
                    f.insert("keys/roots/1.json.sig".into(), s);
                },
                codes: &[],
                chain_ok: true,
            },
            Row {
                name: "a superseded root's approval has expired (history; twin)",
                mutate: |fx, f| {
                    let s = fx.sign_root(&fx.v1, &[&fx.v1], &[0, 1], "2029-01-01T00:00:00Z");
                    f.insert("keys/roots/1.json.sig".into(), s);
                },
                codes: &[],
                chain_ok: true,
            },
            Row {
                name: "a superseded root's approval expiry is malformed (still judged)",
                mutate: |fx, f| {
                    let s = fx.sign_root(&fx.v1, &[&fx.v1], &[0, 1], "2029-01-01");
                    f.insert("keys/roots/1.json.sig".into(), s);
                },
                codes: &[RootSignatureThreshold],
                chain_ok: false,
            },
            // --- pinned groups --------------------------------------------------------------
            Row {
                name: "a pinned group whose file (id recomputed) does not hash to its pin",
                mutate: |fx, f| {
                    let g = group_file("council", 2, &[&fx.c[0], &fx.c[1]]);
                    f.insert("keys/groups/council.json".into(), json_bytes(&g));
                },
                // The delegation that requires council is unusable, but only the group's own
                // code is reported (see the finding on spec § 5.3 in the report).
                codes: &[GroupIdMismatch],
                chain_ok: true,
            },
            Row {
                name: "a pinned group's threshold changed under its old group_id",
                mutate: |fx, f| {
                    let mut g = group_file("council", 1, &[&fx.c[0], &fx.c[1]]);
                    g.threshold = 2;
                    f.insert("keys/groups/council.json".into(), json_bytes(&g));
                },
                codes: &[GroupIdMismatch],
                chain_ok: true,
            },
            Row {
                name: "a pinned group's file is absent",
                mutate: |_, f| {
                    f.remove("keys/groups/akash.json");
                },
                codes: &[GroupMissing],
                chain_ok: true,
            },
            Row {
                name: "a group file the root does not pin",
                mutate: |fx, f| {
                    let g = group_file("extra", 1, &[&fx.akash]);
                    f.insert("keys/groups/extra.json".into(), json_bytes(&g));
                },
                codes: &[GroupNotPinned],
                chain_ok: true,
            },
            Row {
                name: "a group file whose name is not its file name",
                mutate: |fx, f| {
                    let g = group_file("other", 1, &[&fx.akash]);
                    f.insert("keys/groups/akash.json".into(), json_bytes(&g));
                },
                codes: &[GroupInvalid],
                chain_ok: true,
            },
            // --- delegations and roles ------------------------------------------------------
            Row {
                name: "a delegation naming an unknown group",
                mutate: |fx, f| fx.resign_v2(f, |v2| v2.delegations[0].groups.push("ghost".into())),
                codes: &[DelegationInvalid],
                chain_ok: true,
            },
            Row {
                name: "a delegation naming a group twice",
                mutate: |fx, f| {
                    fx.resign_v2(f, |v2| v2.delegations[0].groups.push("council".into()))
                },
                codes: &[DelegationInvalid],
                chain_ok: true,
            },
            Row {
                name: "a delegation with an invalid pattern",
                mutate: |fx, f| {
                    fx.resign_v2(f, |v2| v2.delegations[0].paths.push("treaties/[ab]".into()))
                },
                codes: &[DelegationInvalid],
                chain_ok: true,
            },
            Row {
                name: "a delegation whose two groups share a member's key",
                mutate: |fx, f| {
                    let g = group_file("mirror", 1, &[&fx.c[0]]);
                    f.insert("keys/groups/mirror.json".into(), json_bytes(&g));
                    fx.resign_v2(f, |v2| {
                        v2.groups.insert("mirror".into(), g.group_id.clone());
                        v2.delegations[0].groups.push("mirror".into());
                    });
                },
                codes: &[DelegationConflict],
                chain_ok: true,
            },
            Row {
                name: "a role naming an unpinned group",
                mutate: |fx, f| {
                    fx.resign_v2(f, |v2| {
                        v2.roles.insert("release".into(), "ghost".into());
                    })
                },
                codes: &[RoleInvalid],
                chain_ok: true,
            },
            Row {
                name: "the agent role in the snapshot role's group",
                mutate: |fx, f| {
                    fx.resign_v2(f, |v2| {
                        let g = v2.roles["snapshot"].clone();
                        v2.roles.insert("agent".into(), g);
                    })
                },
                codes: &[RoleInvalid],
                chain_ok: true,
            },
            Row {
                name: "the agent role in a provider's group (a delegation requires it)",
                mutate: |fx, f| {
                    fx.resign_v2(f, |v2| {
                        v2.roles.insert("agent".into(), "akash".into());
                    })
                },
                codes: &[RoleInvalid],
                chain_ok: true,
            },
            Row {
                name: "the agent role in a group of its own",
                mutate: |fx, f| {
                    let g = group_file("agents", 1, &[&key("agent-1")]);
                    f.insert("keys/groups/agents.json".into(), json_bytes(&g));
                    fx.resign_v2(f, |v2| {
                        v2.groups.insert("agents".into(), g.group_id.clone());
                        v2.roles.insert("agent".into(), "agents".into());
                    })
                },
                codes: &[],
                chain_ok: true,
            },
            Row {
                name: "the agent role's group lists a key of another group",
                mutate: |fx, f| {
                    let g = group_file("agents", 1, &[&fx.akash]);
                    f.insert("keys/groups/agents.json".into(), json_bytes(&g));
                    fx.resign_v2(f, |v2| {
                        v2.groups.insert("agents".into(), g.group_id.clone());
                        v2.roles.insert("agent".into(), "agents".into());
                    })
                },
                codes: &[RoleInvalid],
                chain_ok: true,
            },
            Row {
                name: "the agent role in the root group",
                mutate: |fx, f| {
                    fx.resign_v2(f, |v2| {
                        v2.roles.insert("agent".into(), ROOT_GROUP.into());
                    })
                },
                codes: &[RoleInvalid],
                chain_ok: true,
            },
            Row {
                name: "a role left unfilled",
                mutate: |fx, f| {
                    fx.resign_v2(f, |v2| {
                        v2.roles.remove("log");
                    })
                },
                codes: &[RoleInvalid],
                chain_ok: true,
            },
            Row {
                name: "a role filled by the root group (twin)",
                mutate: |fx, f| {
                    fx.resign_v2(f, |v2| {
                        v2.roles.insert("release".into(), ROOT_GROUP.into());
                    })
                },
                codes: &[],
                chain_ok: true,
            },
        ]
    }

    #[test]
    fn the_honest_rotated_repository_is_trusted_with_no_findings() {
        let fx = Fx::new();
        let (trust, findings) = fx.load(&fx.files, &Anchor::Repository);
        assert!(findings.is_empty(), "{findings:?}");
        let trust = trust.expect("trust");
        assert!(trust.chain_ok);
        assert_eq!(trust.anchor_version, 1);
        assert_eq!(trust.root.version, 2);
        assert_eq!(trust.root_group.group_id, fx.v2.root_group.group_id);
        assert_eq!(
            trust.groups.keys().collect::<Vec<_>>(),
            ["akash", "council", "root"]
        );
        assert!(trust.broken_groups.is_empty());
        assert_eq!(
            trust.root_files.keys().collect::<Vec<_>>(),
            ["keys/root.json", "keys/roots/1.json", "keys/roots/2.json"]
        );
        assert!(trust.root_files.values().all(|j| j.approved));
        // Version 2 was judged under both root groups, version 1 under its own.
        let groups = |f: &str| {
            trust.root_files[f]
                .groups
                .iter()
                .map(|g| g.group_id.clone())
                .collect::<Vec<_>>()
        };
        let (g1, g2) = (
            fx.v1.root_group.group_id.clone(),
            fx.v2.root_group.group_id.clone(),
        );
        assert_eq!(groups("keys/roots/1.json"), std::slice::from_ref(&g1));
        assert_eq!(groups("keys/roots/2.json"), [g1.clone(), g2.clone()]);
        assert_eq!(groups("keys/root.json"), [g1, g2]);
        assert!(trust.delegations.iter().all(|d| d.problem.is_none()));
    }

    #[test]
    fn each_single_mutation_of_the_honest_repository_gives_its_exact_codes() {
        let fx = Fx::new();
        let mut failures = Vec::new();
        for row in rows() {
            let mut files = fx.files.clone();
            (row.mutate)(&fx, &mut files);
            assert_ne!(
                files, fx.files,
                "{}: the mutation changed nothing",
                row.name
            );
            let (trust, findings) = fx.load(&files, &Anchor::Repository);
            let chain_ok = trust.as_ref().is_some_and(|t| t.chain_ok);
            let want: Vec<Code> = {
                let mut w = row.codes.to_vec();
                w.sort();
                w
            };
            if codes(&findings) != want || chain_ok != row.chain_ok {
                failures.push(format!(
                    "{}: codes {:?} (want {:?}), chain_ok {chain_ok} (want {})\n    {:?}",
                    row.name,
                    codes(&findings),
                    want,
                    row.chain_ok,
                    findings.iter().map(|f| &f.message).collect::<Vec<_>>()
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn a_rejected_root_version_says_why_in_its_judged_envelope() {
        let fx = Fx::new();
        // (signers of version 2, root groups its statement names, the code inside the verdict)
        let table: &[(&[usize], bool, Code)] = &[
            (&[0, 1], true, Code::ThresholdNotMet),
            (&[1, 2], true, Code::ThresholdNotMet),
            (&[0, 1, 2], false, Code::StatementGroupsMismatch),
        ];
        for (signers, both, code) in table {
            let mut files = fx.files.clone();
            let groups: Vec<&Root> = if *both {
                vec![&fx.v1, &fx.v2]
            } else {
                vec![&fx.v2]
            };
            put(
                &mut files,
                &fx.v2,
                fx.sign_root(&fx.v2, &groups, signers, EXPIRES),
            );
            let (trust, _) = fx.load(&files, &Anchor::Repository);
            let trust = trust.expect("trust");
            for f in ["keys/roots/2.json", "keys/root.json"] {
                let j = &trust.root_files[f];
                assert!(!j.approved, "{f} {signers:?}");
                assert!(
                    j.findings.iter().any(|x| x.code == *code),
                    "{f} {signers:?}: {:?}",
                    j.findings
                );
            }
            assert!(trust.root_files["keys/roots/1.json"].approved);
        }
    }

    #[test]
    fn a_broken_group_makes_every_delegation_that_requires_it_unusable() {
        let fx = Fx::new();
        let mut files = fx.files.clone();
        let g = group_file("council", 2, &[&fx.c[0], &fx.c[1]]);
        files.insert("keys/groups/council.json".into(), json_bytes(&g));
        let (trust, _) = fx.load(&files, &Anchor::Repository);
        let trust = trust.expect("trust");
        assert!(trust.broken_groups.contains_key("council"));
        assert!(!trust.groups.contains_key("council"));
        let problem = |name: &str| {
            trust
                .delegations
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.problem.is_some())
        };
        // council fills every role, so the implicit snapshot delegation is unusable too.
        assert_eq!(problem("role snapshot"), Some(true));
        assert_eq!(problem("treaties-akash"), Some(true));
        assert_eq!(problem("governance-config"), Some(false));
    }

    #[test]
    fn delegations_decide_by_first_match_in_order() {
        let fx = Fx::new();
        let decided = |files: &Files, path: &str| {
            let (trust, findings) = fx.load(files, &Anchor::Repository);
            assert!(findings.is_empty(), "{findings:?}");
            trust
                .expect("trust")
                .delegation_for(path)
                .map(|d| d.name.clone())
        };
        let catch_all = Delegation {
            name: "catch-all".into(),
            paths: vec!["**".into()],
            groups: vec![ROOT_GROUP.into()],
        };
        let first = {
            let mut f = fx.files.clone();
            fx.resign_v2(&mut f, |v2| v2.delegations.insert(0, catch_all.clone()));
            f
        };
        let last = {
            let mut f = fx.files.clone();
            fx.resign_v2(&mut f, |v2| v2.delegations.push(catch_all.clone()));
            f
        };
        // (tree, path, the delegation that decides)
        let table: &[(&Files, &str, Option<&str>)] = &[
            (&fx.files, TREATY, Some("treaties-akash")),
            (
                &fx.files,
                "keys/groups/council.json",
                Some("governance-config"),
            ),
            (
                &fx.files,
                "schemas/treaty.schema.json",
                Some("governance-config"),
            ),
            (&fx.files, "treaties/AURORA-IONET-001.json", None),
            (&fx.files, "treaties/aurora-akash-001.json", None),
            (&fx.files, "state/snapshot.json", Some("role snapshot")),
            (&first, TREATY, Some("catch-all")),
            (&first, "keys/groups/council.json", Some("catch-all")),
            // The snapshot role's implicit delegation comes before every delegation.
            (&first, "state/heartbeat.json", Some("role snapshot")),
            (&last, TREATY, Some("treaties-akash")),
            (&last, "policies/p.json", Some("catch-all")),
        ];
        for (files, path, want) in table {
            assert_eq!(decided(files, path).as_deref(), *want, "{path}");
        }
        // The statement for a treaty must name the delegation's groups with their pinned ids.
        let (trust, _) = fx.load(&fx.files, &Anchor::Repository);
        let trust = trust.expect("trust");
        let d = trust.delegation_for(TREATY).expect("delegation");
        let refs = trust.group_refs(d).expect("refs");
        let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["council", "akash"]);
        assert_eq!(refs[0].group_id, trust.groups["council"].group_id);
    }

    #[test]
    fn anchors_start_the_chain_where_they_say() {
        let fx = Fx::new();
        let mut other_v1 = fx.v1.clone();
        other_v1.expires = "2035-01-01T00:00:00Z".into();
        let mut future = fx.v2.clone();
        future.version = 3;
        // (anchor, the codes, chain_ok, anchor_version)
        let table: Vec<(Anchor, &[Code], bool, u64)> = vec![
            (Anchor::Repository, &[], true, 1),
            (Anchor::Pinned(Box::new(fx.v1.clone())), &[], true, 1),
            (
                Anchor::Pinned(Box::new(other_v1)),
                &[Code::RootNotPinned],
                false,
                1,
            ),
            (
                Anchor::Pinned(Box::new(future)),
                &[Code::RootNotPinned],
                false,
                3,
            ),
            (
                Anchor::PinnedGroup(fx.v2.root_group.group_id.clone()),
                &[],
                true,
                2,
            ),
            (
                Anchor::PinnedGroup(fx.v1.root_group.group_id.clone()),
                &[],
                true,
                1,
            ),
            (
                Anchor::PinnedGroup("blake3:00".into()),
                &[Code::RootNotPinned],
                false,
                1,
            ),
        ];
        for (anchor, want, chain_ok, version) in table {
            let (trust, findings) = fx.load(&fx.files, &anchor);
            let trust = trust.expect("trust");
            assert_eq!(codes(&findings), want, "{anchor:?}");
            assert_eq!(trust.chain_ok, chain_ok, "{anchor:?}");
            assert_eq!(trust.anchor_version, version, "{anchor:?}");
        }
        // A pinned group anchors at its first version, which must still carry the previous
        // group's threshold its statement names: version 2 signed by the new group alone.
        let mut files = fx.files.clone();
        put(
            &mut files,
            &fx.v2,
            fx.sign_root(&fx.v2, &[&fx.v1, &fx.v2], &[1, 2], EXPIRES),
        );
        let (trust, findings) = fx.load(
            &files,
            &Anchor::PinnedGroup(fx.v2.root_group.group_id.clone()),
        );
        assert_eq!(codes(&findings), [Code::RootSignatureThreshold]);
        assert!(!trust.expect("trust").chain_ok);
    }

    #[test]
    fn a_root_file_pin_judges_the_pinned_version_under_both_groups_of_its_rotation() {
        // docs/spec.md § 5.1: pinned at version 2 (a rotation) of a three-version chain, the
        // pin vouches for version 2's bytes, and its envelope — whose statement rightly names
        // version 1's root group too — is judged under both groups, as every rotation is.
        let fx = Fx::new();
        let pinned = Anchor::Pinned(Box::new(fx.v2.clone()));
        // Pinned at the newest version (what `treaty gate` does with BASE's root).
        let (trust, findings) = fx.load(&fx.files, &pinned);
        assert!(
            findings.is_empty(),
            "honest chain pinned at its newest, 2: {findings:?}"
        );
        assert!(trust.expect("trust").chain_ok);
        let mut files = fx.files.clone();
        let v3 = fx.v3();
        put(&mut files, &v3, fx.sign_root(&v3, &[&v3], &[1, 2], EXPIRES));
        let (trust, findings) = fx.load(&files, &pinned);
        assert!(
            findings.is_empty(),
            "honest chain pinned at 2: {findings:?}"
        );
        assert!(trust.expect("trust").chain_ok);
        // Its envelope is still judged (an entry nobody reads would be an entry nobody
        // judges): junk there is a finding.
        files.insert("keys/roots/2.json.sig".into(), b"not an envelope".to_vec());
        let (_, findings) = fx.load(&files, &pinned);
        assert_eq!(codes(&findings), [Code::RootSignatureThreshold]);
    }
}
