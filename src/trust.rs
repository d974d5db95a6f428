//! The trust layer: root chain → pinned groups → delegations.
//!
//! Owns the answer to "which groups must approve this path, and are they the groups the root
//! pins?". It walks `keys/roots/1.json … N.json` from the anchor (the repository's first root,
//! or a root pinned with `--trust`), requiring each version N+1 to carry the threshold of
//! version N's root group *and* of its own (TUF §5.3.4 style), then loads and checks every
//! pinned group. It never judges ordinary files; [`crate::verify`] does, using what this
//! module returns. Everything it finds goes into findings; nothing panics, nothing is skipped.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::approval::{judge_approval, Judged};
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
pub fn load(tree: &Tree, anchor: &Anchor, at: Instant) -> (Option<Trust>, Vec<Finding>) {
    let mut findings = Vec::new();
    let Some(root_bytes) = tree.file(ROOT_PATH) else {
        findings.push(
            Finding::error(
                Code::RootMissing,
                Some(ROOT_PATH),
                "no root of trust at this revision",
            )
            .help("run `treaty init` to scaffold a governance repository"),
        );
        return (None, findings);
    };
    let root_bytes: &[u8] = &root_bytes;
    let newest = match parse_root(ROOT_PATH, root_bytes) {
        Ok(r) => r,
        Err(f) => {
            findings.push(f);
            return (None, findings);
        }
    };
    let newest_group = match root_group_of(ROOT_PATH, &newest) {
        Ok(g) => g,
        Err(f) => {
            findings.push(f);
            return (None, findings);
        }
    };
    let mut chain_ok = true;
    let mut root_files = BTreeMap::new();

    // The kept versions, keys/roots/N.json.
    let mut owned_versions: BTreeMap<u64, std::borrow::Cow<'_, [u8]>> = BTreeMap::new();
    for p in tree.entries.keys() {
        if let FileKind::RootVersion(n) = FileKind::of(p) {
            if let Ok(b) = tree.read(p) {
                owned_versions.insert(n, b);
            }
        }
    }
    let versions: BTreeMap<u64, &[u8]> = owned_versions
        .iter()
        .map(|(n, b)| (*n, b.as_ref()))
        .collect();
    let max = newest.version;
    let contiguous = versions.keys().copied().eq(1..=max);
    if !contiguous {
        chain_ok = false;
        let have: Vec<String> = versions.keys().map(u64::to_string).collect();
        findings.push(
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
        chain_ok = false;
        findings.push(Finding::error(
            Code::RootChainBroken,
            Some(ROOT_PATH),
            format!("keys/root.json differs from keys/roots/{max}.json, its newest kept version"),
        ));
    }

    // Parse every kept version.
    let mut roots: BTreeMap<u64, (Root, Group)> = BTreeMap::new();
    for (&n, bytes) in &versions {
        let path = format!("keys/roots/{n}.json");
        match parse_root(&path, bytes).and_then(|r| {
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
        }) {
            Ok(x) => {
                roots.insert(n, x);
            }
            Err(f) => {
                chain_ok = false;
                findings.push(f);
            }
        }
    }

    // The anchor.
    let (start, _pinned) = match anchor {
        Anchor::Repository => (1, false),
        Anchor::Pinned(p) => {
            let v = p.version;
            match roots.get(&v) {
                Some((r, _)) if r == p.as_ref() => {}
                _ => {
                    chain_ok = false;
                    findings.push(
                        Finding::error(
                            Code::RootNotPinned,
                            Some(&format!("keys/roots/{v}.json")),
                            format!("the pinned root (version {v}) is not this repository's root version {v}"),
                        )
                        .help("this repository does not descend from the root you trust; do not use it"),
                    );
                }
            }
            if v > max {
                chain_ok = false;
                findings.push(Finding::error(
                    Code::RootNotPinned,
                    Some(ROOT_PATH),
                    format!("the pinned root is version {v}, newer than this repository's version {max} (rollback)"),
                ));
            }
            (v, true)
        }
        Anchor::PinnedGroup(id) => {
            // The earliest version with this root group; judged below with that group's own
            // threshold, like a genesis root.
            match roots.iter().find(|(_, (_, g))| g.group_id == *id) {
                Some((n, _)) => (*n, false),
                None => {
                    chain_ok = false;
                    findings.push(
                        Finding::error(
                            Code::RootNotPinned,
                            Some("keys/roots"),
                            format!("no root version of this repository has the pinned root group {id}"),
                        )
                        .help("this repository does not descend from the root group you trust; do not use it"),
                    );
                    (1, false)
                }
            }
        }
    };

    // Walk the chain: version k needs the threshold of k-1's root group and of its own.
    let revoked_newest: HashMap<String, Revocation> = newest
        .revoked
        .iter()
        .map(|r| (r.keyid.clone(), r.clone()))
        .collect();
    let judge_root = |file: &str, n: u64, bytes: &[u8], own: &Group, prev: Option<&Group>| {
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
        judge_approval(
            ROOT_PATH,
            &sig_path,
            bytes,
            n,
            &required,
            &refs,
            tree.file(&sig_path).as_deref(),
            &revoked_newest,
            at,
            true,
        )
    };
    // Over the versions that exist, never a loop over `1..=max`: `max` is the unsigned newest
    // root's claim, and a claim of 2^64 - 1 must not become 2^64 loop turns (a missing version
    // was reported above as a broken chain); and `..=max`, since a range `1..=0` panics.
    for (&n, bytes) in versions.range(..=max) {
        let path = format!("keys/roots/{n}.json");
        let Some((_, own)) = roots.get(&n) else {
            continue;
        };
        if n < start {
            continue;
        }
        // The pinned version was trusted out of band (its bytes were compared with the pin
        // above), and its envelope is judged all the same: an entry nothing reads would be an
        // entry nobody judges.
        // At a pinned group's first version the approval was made (and is bound) for both the
        // previous root group and its own, so both thresholds are still required: the pinned
        // group's is what trust rests on, the previous one's only makes the check stricter.
        let prev = if n == start && !(n > 1 && matches!(anchor, Anchor::PinnedGroup(_))) {
            None
        } else {
            roots.get(&(n - 1)).map(|(_, g)| g)
        };
        if n > start && prev.is_none() {
            chain_ok = false;
            continue;
        }
        let mut j = judge_root(&path, n, bytes, own, prev);
        if n < max {
            // Superseded root versions are history: as in TUF, only the newest root's expiry
            // (and its approval's) is judged, so a chain stays walkable years later.
            j.findings.retain(|f| f.code != Code::ApprovalExpired);
            j.approved = !j.findings.iter().any(Finding::is_error);
        }
        if !j.approved {
            chain_ok = false;
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
            findings.push(f);
        }
        root_files.insert(path, j);
    }
    // keys/root.json.sig must approve the newest root exactly as keys/roots/N.json.sig does.
    {
        let prev = max
            .checked_sub(1)
            .and_then(|p| roots.get(&p))
            .map(|(_, g)| g);
        let j = judge_root(ROOT_PATH, max, root_bytes, &newest_group, prev);
        if !j.approved {
            chain_ok = false;
            findings.push(Finding::error(
                Code::RootSignatureThreshold,
                Some(ROOT_PATH),
                format!("keys/root.json is not approved: {}", j.summary()),
            ));
        }
        root_files.insert(ROOT_PATH.to_owned(), j);
    }

    // Expiry: only the newest root's matters (older ones are history).
    match crate::time::parse(&newest.expires) {
        Ok(exp) if at >= exp => {
            chain_ok = false;
            findings.push(
                Finding::error(
                    Code::RootExpired,
                    Some(ROOT_PATH),
                    format!("the root expired at {} (judged at {})", newest.expires, crate::time::format(at)),
                )
                .help("the root group must approve a new root version with a later expiry (`treaty root rotate`)"),
            );
        }
        Ok(_) => {}
        Err(m) => {
            chain_ok = false;
            findings.push(Finding::error(
                Code::RootInvalid,
                Some(ROOT_PATH),
                format!("expires: {m}"),
            ));
        }
    }

    let (groups, broken_groups, mut gfind) = load_groups(tree, &newest, &newest_group);
    findings.append(&mut gfind);
    let (delegations, mut dfind) = compile_delegations(&newest, &groups, &broken_groups);
    findings.append(&mut dfind);
    for role in ROLES {
        match newest.roles.get(role) {
            Some(g) if g == ROOT_GROUP || newest.groups.contains_key(g) => {}
            Some(g) => findings.push(Finding::error(
                Code::RoleInvalid,
                Some(ROOT_PATH),
                format!("role {role:?} names group {g:?}, which the root does not pin"),
            )),
            None => findings.push(Finding::error(
                Code::RoleInvalid,
                Some(ROOT_PATH),
                format!("role {role:?} is not filled"),
            )),
        }
    }

    let trust = Trust {
        revoked: revoked_newest,
        root: newest,
        root_group: newest_group,
        groups,
        broken_groups,
        delegations,
        chain_ok,
        anchor_version: start,
        anchor_kind: match anchor {
            Anchor::Repository => "repository",
            Anchor::Pinned(_) => "pinned",
            Anchor::PinnedGroup(_) => "pinned-group",
        },
        root_files,
    };
    (Some(trust), findings)
}

type Groups = (
    BTreeMap<String, Group>,
    BTreeMap<String, String>,
    Vec<Finding>,
);

fn load_groups(tree: &Tree, root: &Root, root_group: &Group) -> Groups {
    let mut groups = BTreeMap::new();
    let mut broken = BTreeMap::new();
    let mut findings = Vec::new();
    groups.insert(ROOT_GROUP.to_owned(), root_group.clone());
    for (name, pin) in &root.groups {
        let path = format!("keys/groups/{name}.json");
        let mut fail = |code: Code, msg: String, findings: &mut Vec<Finding>| {
            findings.push(Finding::error(code, Some(&path), msg.clone()));
            broken.insert(name.clone(), msg);
        };
        if name == ROOT_GROUP || !crate::governance::model::valid_group_name(name) {
            fail(
                Code::RootInvalid,
                format!("{name:?} is not a usable group name"),
                &mut findings,
            );
            continue;
        }
        let Some(bytes) = tree.file(&path) else {
            fail(
                Code::GroupMissing,
                format!("the root pins group {name:?} but {path} is absent"),
                &mut findings,
            );
            continue;
        };
        let gf: GroupFile = match crate::json::from_slice(&bytes) {
            Ok(g) => g,
            Err(e) => {
                fail(
                    Code::GroupInvalid,
                    format!("not a valid group file: {e}"),
                    &mut findings,
                );
                continue;
            }
        };
        if let Err(m) = crate::governance::check_spec_version(&gf.spec_version) {
            fail(Code::SpecVersionUnsupported, m.to_string(), &mut findings);
            continue;
        }
        if gf.name != *name {
            fail(
                Code::GroupInvalid,
                format!("file says name {:?} but sits at {path}", gf.name),
                &mut findings,
            );
            continue;
        }
        match Group::from_file(&gf) {
            Ok(g) if &g.group_id == pin => {
                groups.insert(name.clone(), g);
            }
            Ok(g) => fail(
                Code::GroupIdMismatch,
                format!(
                    "group changed without a root update: its members and threshold hash to {}, but the root pins {pin}",
                    g.group_id
                ),
                &mut findings,
            ),
            Err(e) => {
                let code = if matches!(e, crate::governance::model::GroupError::GroupIdMismatch { .. }) {
                    Code::GroupIdMismatch
                } else {
                    Code::GroupInvalid
                };
                fail(code, e.to_string(), &mut findings);
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
