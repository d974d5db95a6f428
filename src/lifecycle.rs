//! Lifecycle: changing trust without hand-editing JSON.
//!
//! Owns every change to `keys/`: root versions (rotate, expiry), groups (create, members,
//! threshold), revocations and delegations. Each change is a *root update*: the first change
//! after an approved root starts version N+1 (`keys/root.json` + `keys/roots/N+1.json`, the old
//! `.sig` kept beside `keys/roots/N.json`); further changes before it is approved edit that same
//! draft, dropping the signatures it collected so far. Before writing anything, the new state is checked as `treaty verify` would
//! check it (groups valid and matching their pins, delegations satisfiable and conflict-free,
//! roles filled), so a change that would break trust is refused, not written. It never signs:
//! signers run `treaty sign keys/root.json`, and `treaty status` says who must.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diag::Code;
use crate::governance::model::{
    group_id, Delegation, GroupBody, GroupFile, MemberEntry, Revocation, RevocationReason, Root,
    ROOT_GROUP,
};
use crate::path::RepoPath;
use crate::scaffold::{json_bytes, ScaffoldError};
use crate::source::{tree_from_dir, Entry, Tree};
use crate::trust::{self, Anchor, ROOT_PATH};

/// Why a lifecycle change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
    #[error(transparent)]
    Write(#[from] ScaffoldError),
    #[error(transparent)]
    Group(#[from] crate::governance::model::GroupError),
    /// The change asks for what the trust files already say: nothing is written, so no root
    /// signatures are spent on a version identical to the current one.
    #[error("nothing to change: {0}")]
    Unchanged(String),
    /// An argument outside what the repository allows (a position past the end): usage, exit 2.
    #[error("{0}")]
    OutOfRange(String),
}

fn refused(m: impl Into<String>) -> LifecycleError {
    LifecycleError::Refused(m.into())
}

/// A pending change to the governance work tree: the new root and any group files.
#[derive(Debug, Clone)]
pub struct Change {
    dir: PathBuf,
    pub root: Root,
    /// Whether this change starts a new root version (the current one carries signatures).
    pub bumped: bool,
    pub previous_version: u64,
    groups: BTreeMap<String, Option<GroupFile>>,
    /// `root rotate`: a new version is the point, even with nothing else changed.
    rotation: bool,
}

/// What a written change asks of the signers.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub version: u64,
    pub bumped: bool,
    /// Human lines: which root groups must sign, and what else needs re-approval.
    pub next_steps: Vec<String>,
}

/// Reads and parses one JSON file, naming it in any error.
fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T, LifecycleError> {
    let err = |reason: String| LifecycleError::Read {
        path: p.display().to_string(),
        reason,
    };
    let b = std::fs::read(p).map_err(|e| err(e.to_string()))?;
    crate::json::from_slice(&b).map_err(|e| err(e.to_string()))
}

fn read_root(dir: &Path) -> Result<Root, LifecycleError> {
    read_json(&dir.join(ROOT_PATH))
}

fn read_group(dir: &Path, name: &str) -> Result<GroupFile, LifecycleError> {
    read_json(&dir.join(format!("keys/groups/{name}.json")))
}

/// Reads a member public key file (`ID.pub.json` from `treaty key gen`).
pub fn read_member(path: &Path) -> Result<MemberEntry, LifecycleError> {
    read_json(path)
}

impl Change {
    /// Starts a root update in the governance work tree at `dir`.
    pub fn begin(dir: &Path) -> Result<Change, LifecycleError> {
        let mut root = read_root(dir)?;
        let previous_version = root.version;
        // A root whose approval reaches its thresholds is published: changes go into a new
        // version. One still collecting signatures is a draft: it is edited in place, and the
        // signatures it collected so far are dropped, because they are for other bytes.
        let tree = tree_from_dir(dir).map_err(|e| refused(e.to_string()))?;
        let (trust, _) = trust::load(&tree, &Anchor::Repository, crate::time::now());
        let bumped = trust.is_some_and(|t| t.root_files.get(ROOT_PATH).is_some_and(|j| j.approved));
        if bumped {
            root.version = root
                .version
                .checked_add(1)
                .ok_or_else(|| refused("keys/root.json: version is at its maximum (2^64 - 1); no later root can be made"))?;
        }
        Ok(Change {
            dir: dir.to_path_buf(),
            root,
            bumped,
            previous_version,
            groups: BTreeMap::new(),
            rotation: false,
        })
    }

    /// Whether the root (apart from its version) and every touched group file are byte-equal
    /// to what is on disk.
    fn is_unchanged(&self) -> Result<bool, LifecycleError> {
        let mut current = read_root(&self.dir)?;
        current.version = self.root.version;
        if json_bytes(&current) != json_bytes(&self.root) {
            return Ok(false);
        }
        for (name, g) in &self.groups {
            let on_disk = read_group(&self.dir, name).ok();
            match (g, on_disk) {
                (Some(g), Some(d)) if json_bytes(g) == json_bytes(&d) => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The current state of group `name` in this change.
    pub fn group(&self, name: &str) -> Result<GroupFile, LifecycleError> {
        match self.groups.get(name) {
            Some(Some(g)) => Ok(g.clone()),
            Some(None) => Err(refused(format!("group {name:?} is being removed"))),
            None => read_group(&self.dir, name),
        }
    }

    /// Sets group `name` (recomputing its id and the root's pin). `root` edits the root group.
    pub fn set_group(
        &mut self,
        name: &str,
        threshold: u64,
        members: Vec<MemberEntry>,
    ) -> Result<(), LifecycleError> {
        let id = group_id(name, threshold, &members)?;
        let body = GroupBody {
            threshold,
            members: members.clone(),
            group_id: id.clone(),
        };
        crate::governance::model::Group::validate(name, &body)
            .map_err(|e| refused(e.to_string()))?;
        if name == ROOT_GROUP {
            self.root.root_group = body;
        } else {
            if !crate::governance::model::valid_group_name(name) {
                return Err(refused(format!(
                    "{name:?} is not a valid group name ([a-z0-9][a-z0-9._-]{{0,63}})"
                )));
            }
            self.root.groups.insert(name.to_owned(), id.clone());
            self.groups.insert(
                name.to_owned(),
                Some(GroupFile {
                    spec_version: crate::SPEC_VERSION.into(),
                    name: name.into(),
                    threshold,
                    members,
                    group_id: id,
                }),
            );
        }
        Ok(())
    }

    /// Current threshold and members of `name` (the root group included).
    pub fn members(&self, name: &str) -> Result<(u64, Vec<MemberEntry>), LifecycleError> {
        if name == ROOT_GROUP {
            return Ok((
                self.root.root_group.threshold,
                self.root.root_group.members.clone(),
            ));
        }
        if !self.root.groups.contains_key(name) {
            return Err(refused(format!("group {name:?} is not pinned by the root")));
        }
        let g = self.group(name)?;
        Ok((g.threshold, g.members))
    }

    /// Checks the new state as verification would, then writes it.
    pub fn commit(self) -> Result<Outcome, LifecycleError> {
        // A change that changes nothing writes nothing (a rotation is the exception: a new
        // version is what it asks for).
        if !self.rotation && self.is_unchanged()? {
            return Err(LifecycleError::Unchanged(
                "keys/root.json and the group files already say this; no new root version was written".into(),
            ));
        }
        let mut tree: Tree = tree_from_dir(&self.dir).map_err(|e| refused(e.to_string()))?;
        let root_bytes = json_bytes(&self.root);
        let put = |tree: &mut Tree, p: &str, b: Vec<u8>| {
            if let Ok(rp) = RepoPath::new(p) {
                tree.entries.insert(rp, Entry::File(b));
            }
        };
        put(&mut tree, ROOT_PATH, root_bytes.clone());
        put(
            &mut tree,
            &format!("keys/roots/{}.json", self.root.version),
            root_bytes.clone(),
        );
        for (name, g) in &self.groups {
            if let Some(g) = g {
                put(
                    &mut tree,
                    &format!("keys/groups/{name}.json"),
                    json_bytes(g),
                );
            }
        }
        let (_, findings) = trust::load(&tree, &Anchor::Repository, crate::time::now());
        let blocking: Vec<String> = findings
            .iter()
            .filter(|f| {
                matches!(
                    f.code,
                    Code::GroupInvalid
                        | Code::GroupIdMismatch
                        | Code::GroupMissing
                        | Code::DelegationInvalid
                        | Code::DelegationConflict
                        | Code::RoleInvalid
                        | Code::RootInvalid
                )
            })
            .map(ToString::to_string)
            .collect();
        if !blocking.is_empty() {
            return Err(refused(format!(
                "refusing: the change would break trust:\n  {}",
                blocking.join("\n  ")
            )));
        }
        // Write: groups, then the root (and its kept copy); a bump drops the old root approval
        // from keys/root.json.sig (its copy stays beside keys/roots/N.json). All as one change:
        // a failure half way (a full disk, a directory in the way) leaves every file as it was.
        let mut changes: Vec<crate::durable::Change> = Vec::new();
        for (name, g) in &self.groups {
            if let Some(g) = g {
                changes.push(crate::durable::Change::Write(
                    self.dir.join(format!("keys/groups/{name}.json")),
                    json_bytes(g),
                ));
            }
        }
        changes.push(crate::durable::Change::Write(
            self.dir.join(ROOT_PATH),
            root_bytes.clone(),
        ));
        changes.push(crate::durable::Change::Write(
            self.dir
                .join(format!("keys/roots/{}.json", self.root.version)),
            root_bytes.clone(),
        ));
        changes.push(crate::durable::Change::Remove(
            self.dir.join("keys/root.json.sig"),
        ));
        if !self.bumped {
            changes.push(crate::durable::Change::Remove(
                self.dir
                    .join(format!("keys/roots/{}.json.sig", self.root.version)),
            ));
        }
        crate::durable::replace_all(&changes).map_err(|e| ScaffoldError::Io {
            path: e.path.display().to_string(),
            source: e.source,
        })?;
        let mut next = Vec::new();
        let prev_root: Option<Root> = if self.root.version > 1 {
            std::fs::read(
                self.dir
                    .join(format!("keys/roots/{}.json", self.root.version - 1)),
            )
            .ok()
            .and_then(|b| crate::json::from_slice(&b).ok())
        } else {
            None
        };
        let describe = |r: &Root| {
            let ids: Vec<&str> = r.root_group.members.iter().map(|m| m.id.as_str()).collect();
            format!("{} of [{}]", r.root_group.threshold, ids.join(", "))
        };
        match &prev_root {
            Some(p) if p.root_group.group_id != self.root.root_group.group_id => next.push(format!(
                "root version {} needs {} (old root group) AND {} (new root group): `treaty sign keys/root.json --key KEY`",
                self.root.version,
                describe(p),
                describe(&self.root)
            )),
            _ => next.push(format!(
                "root version {} needs {} of the root group: `treaty sign keys/root.json --key KEY`",
                self.root.version,
                describe(&self.root)
            )),
        }
        let changed: Vec<&String> = self.groups.keys().collect();
        if !changed.is_empty()
            || prev_root
                .as_ref()
                .is_some_and(|p| p.root_group.group_id != self.root.root_group.group_id)
        {
            next.push(
                "approvals name the group ids they were made under: files governed by a changed group must be signed again; `treaty status --worktree` lists them".to_owned(),
            );
        }
        Ok(Outcome {
            version: self.root.version,
            bumped: self.bumped,
            next_steps: next,
        })
    }
}

/// `treaty root rotate`: a new root version (optionally with a new expiry).
pub fn root_rotate(dir: &Path, expires: Option<String>) -> Result<Outcome, LifecycleError> {
    let mut c = Change::begin(dir)?;
    c.rotation = true;
    if !c.bumped {
        return Err(refused(format!(
            "keys/root.json (version {}) is not approved yet: it is already a new version being prepared; sign it, or change it with the other commands",
            c.root.version
        )));
    }
    if let Some(e) = expires {
        let t = crate::time::parse(&e).map_err(|e| refused(e.to_string()))?;
        // A root that is born expired approves nothing, and signing it would spend the root
        // members' signatures on a version no verifier accepts.
        if t <= crate::time::now() {
            return Err(refused(format!(
                "--expires {e} is not in the future: the new root version would be expired from the start"
            )));
        }
        c.root.expires = e;
    }
    c.commit()
}

/// `treaty group create`.
pub fn group_create(
    dir: &Path,
    name: &str,
    threshold: u64,
    members: Vec<MemberEntry>,
) -> Result<Outcome, LifecycleError> {
    let mut c = Change::begin(dir)?;
    if name == ROOT_GROUP
        || c.root.groups.contains_key(name)
        || dir.join(format!("keys/groups/{name}.json")).exists()
    {
        return Err(refused(format!("group {name:?} already exists")));
    }
    c.set_group(name, threshold, members)?;
    c.commit()
}

/// `treaty group add-member`.
pub fn group_add_member(
    dir: &Path,
    name: &str,
    member: MemberEntry,
    threshold: Option<u64>,
) -> Result<Outcome, LifecycleError> {
    let mut c = Change::begin(dir)?;
    let (t, mut members) = c.members(name)?;
    if members.iter().any(|m| m.id == member.id) {
        return Err(refused(format!(
            "group {name:?} already has a member {:?}",
            member.id
        )));
    }
    members.push(member);
    c.set_group(name, threshold.unwrap_or(t), members)?;
    c.commit()
}

/// `treaty group remove-member`.
pub fn group_remove_member(
    dir: &Path,
    name: &str,
    id: &str,
    threshold: Option<u64>,
) -> Result<Outcome, LifecycleError> {
    let mut c = Change::begin(dir)?;
    let (t, mut members) = c.members(name)?;
    let before = members.len();
    members.retain(|m| m.id != id);
    if members.len() == before {
        return Err(refused(format!("group {name:?} has no member {id:?}")));
    }
    c.set_group(name, threshold.unwrap_or(t), members)?;
    c.commit()
}

/// `treaty group set-threshold`.
pub fn group_set_threshold(
    dir: &Path,
    name: &str,
    threshold: u64,
) -> Result<Outcome, LifecycleError> {
    let mut c = Change::begin(dir)?;
    let (_, members) = c.members(name)?;
    c.set_group(name, threshold, members)?;
    c.commit()
}

/// Every key of every member of the current group files, the root group of `root`, and the
/// root group of every kept root version (`keys/roots/`), by key id: the keys this repository
/// has ever trusted, for `key revoke` and the `*.sig` merge driver.
pub fn member_keys(
    dir: &Path,
    root: &Root,
) -> std::collections::BTreeMap<String, crate::crypto::PublicKey> {
    use crate::governance::model::Group;
    let mut groups: Vec<Group> = Vec::new();
    groups.extend(Group::validate(ROOT_GROUP, &root.root_group).ok());
    if let Ok(rd) = std::fs::read_dir(dir.join("keys/roots")) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "json") {
                if let Ok(r) = read_json::<Root>(&e.path()) {
                    groups.extend(Group::validate(ROOT_GROUP, &r.root_group).ok());
                }
            }
        }
    }
    for name in root.groups.keys() {
        if let Ok(g) = read_group(dir, name) {
            groups.extend(Group::from_file(&g).ok());
        }
    }
    groups
        .iter()
        .flat_map(|g| &g.members)
        .flat_map(|m| m.keys_with_ids().map(|(k, id)| (id.to_owned(), k.clone())))
        .collect()
}

/// [`member_keys`] of the work tree at `dir`, reading its `keys/root.json`.
pub fn member_keys_at(
    dir: &Path,
) -> Result<std::collections::BTreeMap<String, crate::crypto::PublicKey>, LifecycleError> {
    Ok(member_keys(dir, &read_root(dir)?))
}

/// `treaty key revoke`.
pub fn key_revoke(
    dir: &Path,
    keyid: &str,
    reason: RevocationReason,
) -> Result<Outcome, LifecycleError> {
    if keyid.len() != 64
        || !keyid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(refused(format!(
            "{keyid:?} is not a key id (64 lowercase hex digits; `treaty key show` prints them)"
        )));
    }
    let mut c = Change::begin(dir)?;
    // A revocation for a key nobody holds protects nothing and usually means a mistyped id (the
    // real key stays trusted): refuse it, naming where the ids come from.
    if !member_keys(dir, &c.root).contains_key(keyid)
        && !c.root.revoked.iter().any(|r| r.keyid == keyid)
    {
        return Err(refused(format!(
            "key {keyid} belongs to no member of any group (keys/groups/*.json) or root version (keys/roots/): nothing to revoke; `treaty key show ID.pub.json` prints a member's key ids"
        )));
    }
    if let Some(r) = c.root.revoked.iter_mut().find(|r| r.keyid == keyid) {
        // A retired key found compromised later is escalated: from then on no timestamp
        // saves its signatures. Nothing is ever de-escalated.
        if r.reason == RevocationReason::Retired && reason == RevocationReason::Compromised {
            r.reason = reason;
            r.time = crate::time::format(crate::time::now());
            return c.commit();
        }
        return Err(refused(format!(
            "key {keyid} is already revoked ({:?})",
            r.reason
        )));
    }
    c.root.revoked.push(Revocation {
        keyid: keyid.to_owned(),
        reason,
        time: crate::time::format(crate::time::now()),
    });
    c.root.revoked.sort_by(|a, b| a.keyid.cmp(&b.keyid));
    c.commit()
}

/// `treaty delegate`: add a delegation for `pattern`, or change the groups of the delegation
/// whose only pattern it is. New delegations go first (first match wins) unless `position`.
pub fn delegate(
    dir: &Path,
    pattern: &str,
    groups: Vec<String>,
    name: Option<String>,
    position: Option<usize>,
) -> Result<Outcome, LifecycleError> {
    crate::glob::Glob::new(pattern).map_err(|e| refused(format!("pattern {pattern:?}: {e}")))?;
    if groups.is_empty() {
        return Err(refused("a delegation needs at least one group"));
    }
    let mut c = Change::begin(dir)?;
    if let Some(d) = c
        .root
        .delegations
        .iter_mut()
        .find(|d| d.paths.len() == 1 && d.paths[0] == pattern)
    {
        d.groups = groups;
    } else {
        let name = name.unwrap_or_else(|| {
            let slug: String = pattern
                .chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() {
                        ch.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            slug.trim_matches('-').chars().take(60).collect()
        });
        if c.root.delegations.iter().any(|d| d.name == name) {
            return Err(refused(format!(
                "a delegation named {name:?} already exists"
            )));
        }
        let len = c.root.delegations.len();
        let at = position.unwrap_or(0);
        if at > len {
            return Err(LifecycleError::OutOfRange(format!(
                "--position {at}: there are {len} delegations, so a new one goes at 0 to {len}"
            )));
        }
        c.root.delegations.insert(
            at,
            Delegation {
                name,
                paths: vec![pattern.to_owned()],
                groups,
            },
        );
    }
    c.commit()
}

/// `treaty delegate --remove NAME`: drop a delegation (the paths it covered fall to the next
/// matching delegation, or become uncovered, which verify then reports).
pub fn delegate_remove(dir: &Path, name: &str) -> Result<Outcome, LifecycleError> {
    let mut c = Change::begin(dir)?;
    let before = c.root.delegations.len();
    c.root.delegations.retain(|d| d.name != name);
    if c.root.delegations.len() == before {
        let names: Vec<&str> = c.root.delegations.iter().map(|d| d.name.as_str()).collect();
        return Err(refused(format!(
            "no delegation named {name:?} (there are: {})",
            names.join(", ")
        )));
    }
    c.commit()
}

/// `treaty role set ROLE GROUP`: which group fills a role (release, snapshot, verdict, log, and
/// the optional runtime roles orders and reputation).
pub fn role_set(dir: &Path, role: &str, group: &str) -> Result<Outcome, LifecycleError> {
    use crate::governance::model::Role;
    if Role::parse(role).is_none() {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        return Err(refused(format!(
            "{role:?} is not a role (roles: {})",
            all.join(", ")
        )));
    }
    let mut c = Change::begin(dir)?;
    if group != ROOT_GROUP && !c.root.groups.contains_key(group) {
        return Err(refused(format!(
            "no group {group:?} in keys/root.json (make it with `treaty group create`)"
        )));
    }
    c.root.roles.insert(role.to_owned(), group.to_owned());
    c.commit()
}

/// One line of a renewal plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenewItem {
    pub path: String,
    pub expires: String,
    /// For each required group: threshold and members who can sign.
    pub signers: Vec<(String, usize, Vec<String>)>,
}

/// `treaty renew`: what expires within `within` of `at` (root and approvals), with who must sign.
pub fn renew_plan(
    dir: &Path,
    within: time::Duration,
    at: crate::time::Instant,
) -> Result<Vec<RenewItem>, LifecycleError> {
    let tree = tree_from_dir(dir).map_err(|e| refused(e.to_string()))?;
    let opts = crate::verify::Options {
        anchor: Anchor::Repository,
        at,
        exhaustive: true,
    };
    let report = crate::verify::verify_tree(&tree, None, &opts);
    let horizon = at + within;
    let mut items = Vec::new();
    // Without a usable root nothing can be said about what expires: "nothing expires" would
    // be a false all-clear on the one day it matters.
    let Some(t) = &report.trust else {
        let why: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.is_error())
            .map(|f| f.message.clone())
            .collect();
        return Err(LifecycleError::Read {
            path: ROOT_PATH.into(),
            reason: format!(
                "no usable root of trust, so expiries cannot be judged ({}); run `treaty verify --worktree` for details",
                if why.is_empty() { "no root".to_owned() } else { why.join("; ") }
            ),
        });
    };
    {
        if crate::time::parse(&t.root_expires).is_ok_and(|e| e <= horizon) {
            let root = read_root(dir)?;
            items.push(RenewItem {
                path: ROOT_PATH.into(),
                expires: t.root_expires.clone(),
                signers: vec![(
                    ROOT_GROUP.into(),
                    root.root_group.threshold as usize,
                    root.root_group
                        .members
                        .iter()
                        .map(|m| m.id.clone())
                        .collect(),
                )],
            });
        }
    }
    for (p, e) in &tree.entries {
        let Some(file) = p.signed_file() else {
            continue;
        };
        if file.as_str() == ROOT_PATH || file.as_str().starts_with("keys/roots/") {
            continue;
        }
        // An envelope whose expiry cannot be read is listed, never passed over in silence.
        let unreadable = |why: String| RenewItem {
            path: file.to_string(),
            expires: format!("unknown ({why})"),
            signers: vec![],
        };
        let Entry::File(b) = e else {
            items.push(unreadable("not a regular file".into()));
            continue;
        };
        let env = match crate::dsse::Envelope::parse(b) {
            Ok(env) => env,
            Err(err) => {
                items.push(unreadable(format!(
                    "{}.sig is not an envelope: {err}",
                    file
                )));
                continue;
            }
        };
        let stmt = match crate::statement::Statement::parse(&env.payload) {
            Ok(s) => s,
            Err(err) => {
                items.push(unreadable(format!(
                    "{}.sig carries no statement: {err}",
                    file
                )));
                continue;
            }
        };
        let Some(exp) = stmt.predicate.expires.as_deref() else {
            continue;
        };
        if crate::time::parse(exp).is_err() {
            items.push(unreadable(format!("expires {exp:?} is not a time")));
            continue;
        }
        if crate::time::parse(exp).is_ok_and(|t| t <= horizon) {
            let signers = report
                .files
                .iter()
                .find(|v| v.path == file.as_str())
                .map(|v| {
                    v.groups
                        .iter()
                        .map(|g| {
                            (g.name.clone(), g.threshold, {
                                let mut all = g.signed.clone();
                                all.extend(g.may_sign.iter().cloned());
                                all.sort();
                                all
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            items.push(RenewItem {
                path: file.to_string(),
                expires: exp.to_owned(),
                signers,
            });
        }
    }
    Ok(items)
}
