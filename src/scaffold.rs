//! Scaffolding: new governance repositories (`treaty init`) and the demo federation.
//!
//! Owns the content of a fresh repository — schemas, gate configuration, a workflow, a root —
//! and the full example federation (`--demo`): keys, groups, seven treaties, a policy, all
//! signed. It writes only inside the directory it is given and refuses to overwrite an existing
//! governance root.

use std::path::{Path, PathBuf};

use crate::crypto::SigningKey;
use crate::governance::model::{Delegation, GroupBody, GroupFile, MemberEntry, Root, ROOT_GROUP};
use crate::governance::schema::BUILTIN;
use crate::path::RepoPath;
use crate::source::tree_from_dir;

/// Errors while scaffolding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScaffoldError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} already exists; refusing to overwrite an existing governance repository")]
    Exists { path: String },
    #[error("git: {0}")]
    Git(String),
    #[error(transparent)]
    Group(#[from] crate::governance::model::GroupError),
    #[error(transparent)]
    Key(#[from] crate::crypto::KeyError),
    #[error(transparent)]
    Read(#[from] crate::source::SourceError),
    #[error(transparent)]
    Path(#[from] crate::path::PathError),
    #[error(transparent)]
    Sign(#[from] crate::sign::SignError),
    #[error(transparent)]
    Heartbeat(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Schema(#[from] crate::governance::schema::SchemaError),
    /// `treaty new treaty`: the id's middle part must be the provider's network.
    #[error("treaty id {id:?} names network {named:?} but --provider is {network:?}: the id's middle part must be the provider's network (AURORA-{upper}-001)", upper = network.to_ascii_uppercase())]
    IdNamesOtherNetwork {
        id: String,
        named: String,
        network: String,
    },
    /// What was about to be written fails its own schema (a defect in this build or the
    /// repository's schema).
    #[error("{path} would not be valid against {schema}: {}", issues.join("; "))]
    WouldBeInvalid {
        path: String,
        schema: String,
        issues: Vec<String>,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |source| ScaffoldError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ScaffoldError> {
    crate::durable::write(path, bytes, None).map_err(|e| ScaffoldError::Io {
        path: e.path.display().to_string(),
        source: e.source,
    })
}

pub fn json_bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    crate::json::pretty_bytes(v)
}

/// The gate configuration `treaty init` writes.
pub const GATES_TOML: &str = r#"# treaty gate configuration. Governed: changing it needs the root group's threshold.
# Each gate is "on", "off" or "warn" (reports but never fails).
spec_version = "1.0"
version = 1

[gates]
schema = "on"
approval = "on"
version = "on"
temp-stub = "on"
no-op = "on"
expiry = "on"

[temp_stub]
markers = ["TEMP-STUB"]
protect = ["**"]
exclude = ["tests/**", "docs/**", "**/fixtures/**"]
# allowlist = [{ path = "src/x.rs", issue = "https://tracker/123", expires = "2027-01-31" }]
allowlist = []
# Files that must name the marker. Listed in every gate report.
exemptions = [
  { path = "gates/**", reason = "gate configuration names the marker" },
  { path = "schemas/gates.schema.json", reason = "the gate configuration schema names the gate" },
]

[promotion]
lanes = ["production", "release/*"]

[expiry]
warn_within_days = 30

# What a change that matters to nobody (whitespace, formatting, comments, re-signing without a
# new signer) does, by path class: "fail" or "warn". Governed files: keys/, treaties/,
# policies/, gates/, schemas/, state/.
[no_op]
governed = "fail"
other = "warn"
"#;

/// The workflow `treaty init` writes: the gate on every pull request.
pub const GATE_WORKFLOW: &str = r#"name: treaty gate
on:
  pull_request:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          fetch-depth: 0
          persist-credentials: false
      # The treaty you audited, by commit: set the repository variables TREATY_GIT_URL (its git
      # URL) and TREATY_REV (the commit) under Settings -> Secrets and variables -> Actions.
      - name: install treaty
        env:
          TREATY_GIT_URL: ${{ vars.TREATY_GIT_URL }}
          TREATY_REV: ${{ vars.TREATY_REV }}
        run: cargo install --locked --git "$TREATY_GIT_URL" --rev "$TREATY_REV" treaty
      # Pull requests: every gate (schema, approval, version, temp-stub, no-op, expiry), with
      # the rules read from the base branch, never from the pull request itself.
      - name: gate
        if: github.event_name == 'pull_request'
        env:
          BASE_SHA: ${{ github.event.pull_request.base.sha }}
        run: treaty gate --base "$BASE_SHA" --head HEAD --format github
      - name: verify approved state
        run: treaty verify --rev HEAD
"#;

/// Member entry for a key.
pub fn member_entry(k: &SigningKey) -> MemberEntry {
    MemberEntry::for_key(k)
}

/// A group body (threshold + members + computed id).
pub fn group_body(
    name: &str,
    threshold: u64,
    members: Vec<MemberEntry>,
) -> Result<GroupBody, ScaffoldError> {
    Ok(GroupBody::new(name, threshold, members)?)
}

/// Writes the files every governance repository starts with: schemas, gates, workflow.
pub fn write_common(dir: &Path) -> Result<(), ScaffoldError> {
    for (name, text) in BUILTIN {
        write_atomic(&dir.join("schemas").join(name), text.as_bytes())?;
    }
    write_atomic(&dir.join("gates/gates.toml"), GATES_TOML.as_bytes())?;
    for d in ["treaties", "policies"] {
        std::fs::create_dir_all(dir.join(d)).map_err(io(&dir.join(d)))?;
    }
    let wf = dir.join(".github/workflows/treaty-gate.yml");
    if !wf.exists() {
        write_atomic(&wf, GATE_WORKFLOW.as_bytes())?;
    }
    Ok(())
}

pub fn write_root(dir: &Path, root: &Root) -> Result<(), ScaffoldError> {
    let bytes = json_bytes(root);
    write_atomic(&dir.join("keys/root.json"), &bytes)?;
    write_atomic(
        &dir.join(format!("keys/roots/{}.json", root.version)),
        &bytes,
    )
}

/// Ensures `dir` is a git repository (initialising one on branch `main` if not).
pub fn ensure_repo(dir: &Path) -> Result<git2::Repository, ScaffoldError> {
    match git2::Repository::open(dir) {
        Ok(r) => Ok(r),
        Err(_) => {
            let mut opts = git2::RepositoryInitOptions::new();
            opts.initial_head("main");
            git2::Repository::init_opts(dir, &opts)
                .map_err(|e| ScaffoldError::Git(e.message().to_owned()))
        }
    }
}

/// Stages everything under `dir` and commits it.
pub fn commit_all(repo: &git2::Repository, message: &str) -> Result<git2::Oid, ScaffoldError> {
    let g = |e: git2::Error| ScaffoldError::Git(e.message().to_owned());
    let mut index = repo.index().map_err(g)?;
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .map_err(g)?;
    index.write().map_err(g)?;
    let tree_id = index.write_tree().map_err(g)?;
    let tree = repo.find_tree(tree_id).map_err(g)?;
    let sig = repo
        .signature()
        .or_else(|_| git2::Signature::now("treaty", "treaty@localhost"))
        .map_err(g)?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .map_err(g)
}

/// What `init` produced.
#[derive(Debug, Clone, Default)]
pub struct Scaffolded {
    pub written: Vec<String>,
    pub key_dir: Option<PathBuf>,
    pub commit: Option<String>,
}

/// `treaty init DIR --root-key PUB...`: a governance repository whose root group is the given
/// members; every governed folder is delegated to the root group until groups are added.
pub fn init(
    dir: &Path,
    root_members: Vec<MemberEntry>,
    threshold: u64,
    years: i64,
) -> Result<Scaffolded, ScaffoldError> {
    if dir.join("keys/root.json").exists() {
        return Err(ScaffoldError::Exists {
            path: dir.join("keys/root.json").display().to_string(),
        });
    }
    ensure_repo(dir)?;
    write_common(dir)?;
    let now = crate::time::now();
    let root = Root {
        spec_version: crate::SPEC_VERSION.into(),
        version: 1,
        expires: crate::time::format(now + crate::time::days(years.saturating_mul(365))),
        root_group: group_body(ROOT_GROUP, threshold, root_members)?,
        groups: Default::default(),
        delegations: vec![Delegation {
            name: "everything".into(),
            paths: vec![
                "keys/**".into(),
                "gates/**".into(),
                "schemas/**".into(),
                "treaties/**".into(),
                "policies/**".into(),
            ],
            groups: vec![ROOT_GROUP.into()],
        }],
        roles: crate::governance::model::all_roles(ROOT_GROUP),
        revoked: vec![],
    };
    crate::governance::model::Group::validate(ROOT_GROUP, &root.root_group)?;
    write_root(dir, &root)?;
    Ok(Scaffolded {
        written: vec!["keys/root.json".into(), "keys/roots/1.json".into()],
        ..Default::default()
    })
}

/// The seven provider networks of the example federation: (network, treaty id infix, name,
/// protocol, regions). Each treaty fails over to the next network's (a ring), and shares a
/// region with it: a failover target in no region of its source could never take its orders.
pub const NETWORKS: [(&str, &str, &str, &str, &[&str]); 7] = [
    (
        "akash",
        "AKASH",
        "Akash Network",
        "grpc",
        &["us-east", "eu-west"],
    ),
    (
        "ionet",
        "IONET",
        "io.net",
        "rest",
        &["us-west", "ap-southeast", "us-east"],
    ),
    (
        "render",
        "RENDER",
        "Render Network",
        "rest",
        &["us-east", "eu-central"],
    ),
    (
        "flux",
        "FLUX",
        "Flux",
        "websocket",
        &["eu-west", "eu-north", "eu-central"],
    ),
    (
        "aethir",
        "AETHIR",
        "Aethir",
        "grpc",
        &["ap-northeast", "ap-southeast", "eu-north"],
    ),
    (
        "vastai",
        "VASTAI",
        "Vast.ai",
        "rest",
        &["us-central", "eu-west", "ap-northeast"],
    ),
    (
        "salad",
        "SALAD",
        "Salad",
        "websocket",
        &["us-east", "sa-east", "us-central"],
    ),
];

/// The service levels a new treaty starts with (the example federation's, and `new treaty`'s).
fn default_slos() -> serde_json::Value {
    serde_json::json!({
        "fill_rate_p95_min": 0.95,
        "rtt_p95_ms_max": 250,
        "provenance_coverage_min": 0.99,
        "policy_decision_ms_p99_max": 5
    })
}

pub fn treaty_json(i: usize, from: &str, expires: &str) -> serde_json::Value {
    let (net, infix, name, proto, regions) = NETWORKS[i % NETWORKS.len()];
    let next = NETWORKS[(i + 1) % NETWORKS.len()].1;
    serde_json::json!({
        "spec_version": crate::SPEC_VERSION,
        "treaty_id": format!("AURORA-{infix}-001"),
        "version": 1,
        "status": "active",
        "parties": {
            "federation": { "name": "Aurora Compute Federation", "did": "did:web:aurora.example" },
            "provider": { "name": name, "network": net, "protocol": proto, "did": format!("did:web:{net}.provider.example") }
        },
        "regions": regions,
        "quotas": { "gpu_hours_per_day": 2400 - 200 * (i % NETWORKS.len()) as u64, "concurrent_jobs": 64, "credits_per_order": 5000 },
        "min_reputation": 0.8,
        "replay_window": { "nonce_ttl_seconds": 86400 },
        "slos": default_slos(),
        "failover": [format!("AURORA-{next}-001")],
        "valid_from": from,
        "expires": expires
    })
}

/// `treaty init DIR --demo`: the full example federation, signed. Keys (DEMO ONLY,
/// unencrypted) go to `DIR/demo-keys/`, which is git-ignored.
pub fn demo(dir: &Path, commit: bool) -> Result<Scaffolded, ScaffoldError> {
    if dir.join("keys/root.json").exists() {
        return Err(ScaffoldError::Exists {
            path: dir.join("keys/root.json").display().to_string(),
        });
    }
    let repo = ensure_repo(dir)?;
    write_common(dir)?;
    let key_dir = dir.join("demo-keys");
    std::fs::create_dir_all(&key_dir).map_err(io(&key_dir))?;
    let gi = dir.join(".gitignore");
    let mut gitignore = std::fs::read_to_string(&gi).unwrap_or_default();
    if !gitignore.lines().any(|l| l.trim() == "/demo-keys/") {
        gitignore.push_str("# DEMO ONLY private keys written by `treaty init --demo`: never commit them.\n/demo-keys/\n");
        write_atomic(&gi, gitignore.as_bytes())?;
    }
    let mk = |id: &str| -> Result<SigningKey, ScaffoldError> {
        let k = SigningKey::generate(id)?;
        let f = k.to_file(None)?;
        let path = key_dir.join(format!("{id}.key"));
        write_atomic(&path, &json_bytes(&f))?;
        set_private(&path)?;
        write_atomic(
            &key_dir.join(format!("{id}.pub.json")),
            &json_bytes(&member_entry(&k)),
        )?;
        Ok(k)
    };
    let now = crate::time::now();
    let from = crate::time::format(now);
    let expires = crate::time::format(now + time::Duration::days(3652));

    let root_keys: Vec<SigningKey> = (1..=3)
        .map(|i| mk(&format!("root-{i}")))
        .collect::<Result<_, _>>()?;
    let mut groups: Vec<(String, u64, Vec<SigningKey>)> = vec![(
        "council".into(),
        2,
        (1..=3)
            .map(|i| mk(&format!("council-{i}")))
            .collect::<Result<_, _>>()?,
    )];
    for (net, ..) in NETWORKS {
        groups.push((
            net.into(),
            1,
            (1..=2)
                .map(|i| mk(&format!("{net}-{i}")))
                .collect::<Result<_, _>>()?,
        ));
    }
    groups.push((
        "release".into(),
        2,
        (1..=3)
            .map(|i| mk(&format!("officer-{i}")))
            .collect::<Result<_, _>>()?,
    ));
    groups.push(("automation".into(), 1, vec![mk("ci-1")?]));
    // The runtime law's signers (docs/law.md): who may order, who vouches for reputation.
    groups.push(("dispatch".into(), 1, vec![mk("dispatcher-1")?]));
    groups.push(("reputation".into(), 1, vec![mk("reputation-1")?]));
    // The decision points' own keys (provenance receipts): a group of their own, never the
    // automation group that signs the state (docs/law.md § Receipts).
    groups.push(("agents".into(), 1, vec![mk("agent-1")?, mk("agent-2")?]));

    let mut pins = std::collections::BTreeMap::new();
    for (name, threshold, keys) in &groups {
        let body = group_body(name, *threshold, keys.iter().map(member_entry).collect())?;
        pins.insert(name.clone(), body.group_id.clone());
        let gf = GroupFile {
            spec_version: crate::SPEC_VERSION.into(),
            name: name.clone(),
            threshold: body.threshold,
            members: body.members,
            group_id: body.group_id,
        };
        write_atomic(
            &dir.join(format!("keys/groups/{name}.json")),
            &json_bytes(&gf),
        )?;
    }
    let mut delegations: Vec<Delegation> = NETWORKS
        .iter()
        .map(|(net, infix, ..)| Delegation {
            name: format!("treaties-{net}"),
            paths: vec![format!("treaties/AURORA-{infix}-*")],
            groups: vec!["council".into(), (*net).into()],
        })
        .collect();
    delegations.push(Delegation {
        name: "policies".into(),
        paths: vec!["policies/**".into()],
        groups: vec!["council".into()],
    });
    delegations.push(Delegation {
        name: "governance-config".into(),
        paths: vec!["keys/**".into(), "gates/**".into(), "schemas/**".into()],
        groups: vec![ROOT_GROUP.into()],
    });
    let root = Root {
        spec_version: crate::SPEC_VERSION.into(),
        version: 1,
        expires: expires.clone(),
        root_group: group_body(ROOT_GROUP, 2, root_keys.iter().map(member_entry).collect())?,
        groups: pins,
        delegations,
        roles: [
            ("release", "release"),
            ("snapshot", "automation"),
            ("verdict", "automation"),
            ("log", "automation"),
            ("orders", "dispatch"),
            ("reputation", "reputation"),
            ("agent", "agents"),
        ]
        .iter()
        .map(|(r, g)| (r.to_string(), g.to_string()))
        .collect(),
        revoked: vec![],
    };
    write_root(dir, &root)?;
    for (i, (_, infix, ..)) in NETWORKS.iter().enumerate() {
        let t = treaty_json(i, &from, &expires);
        write_atomic(
            &dir.join(format!("treaties/AURORA-{infix}-001.json")),
            &json_bytes(&t),
        )?;
    }
    let policy = serde_json::json!({
        "spec_version": crate::SPEC_VERSION,
        "policy_id": "default",
        "version": 1,
        "description": "Federation-wide vault law: what every agent enforces on every order.",
        "constraints": {
            "quota": { "gpu_hours_per_day": 20000, "concurrent_jobs": 512 },
            "region": { "allowed": ["us-east", "us-west", "us-central", "eu-west", "eu-central", "eu-north", "ap-northeast", "ap-southeast", "sa-east"] },
            "reputation": { "min": 0.75 },
            "replay": { "nonce_ttl_seconds": 86400 },
            "validity": { "not_before": from, "not_after": expires }
        },
        "allowlist": NETWORKS.iter().map(|n| format!("AURORA-{}-001", n.1)).collect::<Vec<_>>(),
        "max_amount_per_order": 5000,
        "max_daily_volume": 250000
    });
    write_atomic(&dir.join("policies/default.json"), &json_bytes(&policy))?;

    // Sign everything with exactly each threshold, as a real ceremony would.
    let signers_for = |group: &str| -> Vec<&SigningKey> {
        if group == ROOT_GROUP {
            return root_keys.iter().take(2).collect();
        }
        groups
            .iter()
            .find(|(n, ..)| n == group)
            .map(|(_, t, ks)| ks.iter().take(*t as usize).collect())
            .unwrap_or_default()
    };
    let sign_one = |rel: &str, keys: &[&SigningKey]| -> Result<(), ScaffoldError> {
        let tree = tree_from_dir(dir)?;
        let rp = RepoPath::new(rel)?;
        let bytes = std::fs::read(dir.join(rel)).map_err(io(&dir.join(rel)))?;
        let sig_path = dir.join(format!("{rel}.sig"));
        for k in keys {
            let existing = std::fs::read(&sig_path).ok();
            let s = crate::sign::sign(
                &tree,
                &rp,
                &bytes,
                existing.as_deref(),
                k,
                Some(expires.clone()),
            )?;
            write_atomic(&sig_path, &s.envelope)?;
        }
        Ok(())
    };
    let root_signers = signers_for(ROOT_GROUP);
    sign_one("keys/root.json", &root_signers)?;
    std::fs::copy(
        dir.join("keys/root.json.sig"),
        dir.join("keys/roots/1.json.sig"),
    )
    .map_err(io(dir))?;
    let mut files: Vec<String> = vec!["gates/gates.toml".into(), "policies/default.json".into()];
    files.extend(BUILTIN.iter().map(|(n, _)| format!("schemas/{n}")));
    for (net, infix, ..) in NETWORKS {
        files.push(format!("treaties/AURORA-{infix}-001.json"));
        let _ = net;
    }
    let tree = tree_from_dir(dir)?;
    for f in &files {
        let rp = RepoPath::new(f)?;
        let (_, _, required) = crate::sign::requirements(&tree, &rp)?;
        let keys: Vec<&SigningKey> = required.iter().flat_map(|g| signers_for(&g.name)).collect();
        sign_one(f, &keys)?;
    }
    // A signed snapshot of the whole state and a 24-hour heartbeat, so a fresh demo serves
    // an agent.
    let tree = tree_from_dir(dir)?;
    let snap = crate::snapshot::build(&tree, root.version);
    let snap_bytes = crate::snapshot::to_bytes(&snap);
    write_atomic(&dir.join(crate::snapshot::SNAPSHOT_PATH), &snap_bytes)?;
    let online = signers_for("automation");
    sign_one(crate::snapshot::SNAPSHOT_PATH, &online)?;
    let hb = crate::snapshot::heartbeat(
        &tree,
        &snap_bytes,
        crate::time::now(),
        time::Duration::hours(24),
    )?;
    write_atomic(
        &dir.join(crate::snapshot::HEARTBEAT_PATH),
        &crate::snapshot::to_bytes(&hb),
    )?;
    sign_one(crate::snapshot::HEARTBEAT_PATH, &online)?;
    files.push(crate::snapshot::SNAPSHOT_PATH.into());
    files.push(crate::snapshot::HEARTBEAT_PATH.into());
    let mut out = Scaffolded {
        key_dir: Some(key_dir),
        written: files,
        commit: None,
    };
    if commit {
        let id = commit_all(
            &repo,
            "treaty: example federation (DEMO ONLY keys, not committed)",
        )?;
        out.commit = Some(id.to_string());
    }
    Ok(out)
}

/// Restricts a private key file to its owner (0600) where the platform has modes.
pub fn set_private(path: &Path) -> Result<(), ScaffoldError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    }
    Ok(())
}

/// What a new treaty says about its provider (`treaty new treaty`).
#[derive(Debug, Clone)]
pub struct NewTreaty {
    pub id: String,
    pub network: String,
    pub provider_name: String,
    pub protocol: String,
    pub regions: Vec<String>,
    /// How long from now until it expires.
    pub days: u16,
    /// The federation party (default: the one the repository's treaties already name).
    pub federation_name: Option<String>,
    pub federation_did: Option<String>,
}

/// `treaty new treaty ID`: writes `treaties/ID.json`, a `draft` treaty valid against the
/// repository's own treaty schema (this build's when the repository has none), with the
/// federation party copied from an existing treaty when there is one. Never overwrites.
pub fn new_treaty(dir: &Path, t: &NewTreaty) -> Result<String, ScaffoldError> {
    // The id names the provider (`AURORA-<NETWORK>-NNN`): a treaty whose id says one network
    // and whose party is another would be approved by the wrong provider's delegation.
    let infix = t.id.split('-').nth(1).unwrap_or_default();
    if !infix.eq_ignore_ascii_case(&t.network) {
        return Err(ScaffoldError::IdNamesOtherNetwork {
            id: t.id.clone(),
            named: infix.to_owned(),
            network: t.network.clone(),
        });
    }
    let rel = format!("treaties/{}.json", t.id);
    let path = dir.join(&rel);
    if path.exists() {
        return Err(ScaffoldError::Exists {
            path: path.display().to_string(),
        });
    }
    // The federation party: the one the repository's treaties already name.
    let federation = std::fs::read_dir(dir.join("treaties"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .find_map(|e| {
            let b = std::fs::read(e.path()).ok()?;
            let v: serde_json::Value = crate::json::parse_value(&b).ok()?;
            Some(v.get("parties")?.get("federation")?.clone())
        })
        .unwrap_or_else(
            || serde_json::json!({ "name": "Federation", "did": "did:web:federation.example" }),
        );
    let now = crate::time::now();
    let doc = serde_json::json!({
        "spec_version": crate::SPEC_VERSION,
        "treaty_id": t.id,
        "version": 1,
        "status": "draft",
        "parties": {
            "federation": federation,
            "provider": {
                "name": t.provider_name,
                "network": t.network,
                "protocol": t.protocol,
                "did": format!("did:web:{}.provider.example", t.network)
            }
        },
        "regions": t.regions,
        "quotas": { "gpu_hours_per_day": 0, "concurrent_jobs": 0, "credits_per_order": 0 },
        "min_reputation": 0.8,
        "replay_window": { "nonce_ttl_seconds": 86400 },
        "slos": default_slos(),
        "failover": [],
        "valid_from": crate::time::format(now),
        "expires": crate::time::format(now + crate::time::days(i64::from(t.days)))
    });
    let bytes = json_bytes(&doc);
    let schema_path = crate::governance::FileKind::Treaty
        .schema_path()
        .unwrap_or("schemas/treaty.schema.json");
    let on_disk = std::fs::read(dir.join(schema_path)).ok();
    let compiled = crate::governance::schema::compile_at(schema_path, on_disk.as_deref(), true)?;
    let issues = compiled.validate(&doc, Some(&bytes));
    if !issues.is_empty() {
        return Err(ScaffoldError::WouldBeInvalid {
            path: rel,
            schema: schema_path.to_owned(),
            issues: issues.iter().map(ToString::to_string).collect(),
        });
    }
    write_atomic(&path, &bytes)?;
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every example treaty — the scaffold's and this repository's own — shares a region with
    /// its failover target, and none lists itself: otherwise failover could never name the
    /// target (docs/law.md § Failover).
    #[test]
    fn every_example_treaty_shares_a_region_with_its_failover_target() {
        let scaffolded: Vec<serde_json::Value> = (0..NETWORKS.len())
            .map(|i| treaty_json(i, "2026-01-01T00:00:00Z", "2036-01-01T00:00:00Z"))
            .collect();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("treaties");
        let mut own: Vec<serde_json::Value> = std::fs::read_dir(&dir)
            .expect("treaties/")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| crate::json::from_slice(&std::fs::read(p).expect("read")).expect("json"))
            .collect();
        own.sort_by_key(|t| t["treaty_id"].to_string());
        assert_eq!(own.len(), NETWORKS.len());
        for treaties in [scaffolded, own] {
            ring(&treaties);
        }
    }

    fn ring(treaties: &[serde_json::Value]) {
        let by_id = |id: &str| {
            treaties
                .iter()
                .find(|t| t["treaty_id"] == id)
                .unwrap_or_else(|| panic!("no treaty {id}"))
        };
        for t in treaties {
            let regions = t["regions"].as_array().expect("regions");
            for target in t["failover"].as_array().expect("failover") {
                assert_ne!(target, &t["treaty_id"]);
                let theirs = by_id(target.as_str().expect("id"))["regions"]
                    .as_array()
                    .expect("regions");
                assert!(
                    regions.iter().any(|r| theirs.contains(r)),
                    "{} and {target} share no region",
                    t["treaty_id"]
                );
            }
        }
    }
}
