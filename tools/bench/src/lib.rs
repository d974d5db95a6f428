//! Synthetic governance repositories and the verification benchmark.
//!
//! Owns `treaty-bench gen N` (a repository of N treaties, each approved by 3 hybrid members
//! across two required groups: 2-of-3 of a council and 1-of-2 of a provider group) and
//! `treaty-bench verify` (full verification against the floor of the very same signature
//! verifications in a tight parallel loop). It measures; it never asserts a speed.

pub mod agent;
pub mod audit;
#[cfg(feature = "sim-clock")]
pub mod fleet;
pub mod law;
pub mod noop_corpus;
pub mod noop_legacy;
pub mod release;

use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

use treaty::crypto::{PublicKey, SigningKey};
use treaty::dsse::Envelope;
use treaty::governance::model::{Delegation, GroupFile, Root, ROOT_GROUP};
use treaty::scaffold::{self, group_body, member_entry, ScaffoldError};
use treaty::statement::GroupRef;

/// Why a benchmark could not run. A tool beside the product: its errors are for the person
/// running it, so they carry the step's own message.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Scaffold(#[from] ScaffoldError),
    #[error("{0}")]
    Step(String),
    #[error(transparent)]
    Key(#[from] treaty::crypto::KeyError),
}

fn other(e: impl std::fmt::Display) -> BenchError {
    BenchError::Step(e.to_string())
}

pub use treaty::sign::approve;

/// Writes and commits a synthetic governance repository of `n` treaties into `dir`.
pub fn generate(dir: &Path, n: usize, progress: impl Fn(usize) + Sync) -> Result<(), BenchError> {
    if dir.join("keys/root.json").exists() {
        return Err(BenchError::Scaffold(ScaffoldError::Exists {
            path: dir.join("keys/root.json").display().to_string(),
        }));
    }
    let repo = scaffold::ensure_repo(dir)?;
    scaffold::write_common(dir)?;
    let gen = |id: &str| SigningKey::generate(id).map_err(other);
    let root_keys = [gen("root-1")?, gen("root-2")?, gen("root-3")?];
    let council = [gen("council-1")?, gen("council-2")?, gen("council-3")?];
    let provider = [gen("provider-1")?, gen("provider-2")?];
    // The synthetic signers' keys stay inside .git (never in the work tree), so `bench gate`
    // can approve a pull request on this repository later.
    let key_dir = repo.path().join("bench-keys");
    for k in root_keys.iter().chain(&council).chain(&provider) {
        let f = k.to_file(None).map_err(other)?;
        scaffold::write_atomic(
            &key_dir.join(format!("{}.key", k.member_id)),
            &scaffold::json_bytes(&f),
        )?;
    }
    let now = treaty::time::now();
    let expires = treaty::time::format(now + time::Duration::days(3652));
    let mut pins = std::collections::BTreeMap::new();
    let mut refs = std::collections::BTreeMap::new();
    for (name, t, keys) in [
        ("council", 2u64, &council[..]),
        ("provider", 1, &provider[..]),
    ] {
        let body = group_body(name, t, keys.iter().map(member_entry).collect())?;
        pins.insert(name.to_owned(), body.group_id.clone());
        refs.insert(
            name,
            GroupRef {
                name: name.into(),
                group_id: body.group_id.clone(),
            },
        );
        let gf = GroupFile {
            spec_version: treaty::SPEC_VERSION.into(),
            name: name.into(),
            threshold: t,
            members: body.members,
            group_id: body.group_id,
        };
        scaffold::write_atomic(
            &dir.join(format!("keys/groups/{name}.json")),
            &scaffold::json_bytes(&gf),
        )?;
    }
    let root_body = group_body(ROOT_GROUP, 2, root_keys.iter().map(member_entry).collect())?;
    let root_ref = GroupRef {
        name: ROOT_GROUP.into(),
        group_id: root_body.group_id.clone(),
    };
    let root = Root {
        spec_version: treaty::SPEC_VERSION.into(),
        version: 1,
        expires: expires.clone(),
        root_group: root_body,
        groups: pins,
        delegations: vec![
            Delegation {
                name: "treaties".into(),
                paths: vec!["treaties/**".into()],
                groups: vec!["council".into(), "provider".into()],
            },
            Delegation {
                name: "governance-config".into(),
                paths: vec!["keys/**".into(), "gates/**".into(), "schemas/**".into()],
                groups: vec![ROOT_GROUP.into()],
            },
        ],
        roles: treaty::governance::model::all_roles("council"),
        revoked: vec![],
    };
    scaffold::write_root(dir, &root)?;
    let root_signers = [&root_keys[0], &root_keys[1]];
    let root_bytes = std::fs::read(dir.join("keys/root.json")).map_err(other)?;
    let env = approve(
        treaty::trust::ROOT_PATH,
        &root_bytes,
        1,
        vec![root_ref.clone()],
        Some(expires.clone()),
        &root_signers,
    )?;
    scaffold::write_atomic(&dir.join("keys/root.json.sig"), &env)?;
    scaffold::write_atomic(&dir.join("keys/roots/1.json.sig"), &env)?;
    let mut config: Vec<String> = vec!["gates/gates.toml".into()];
    config.extend(
        treaty::governance::schema::BUILTIN
            .iter()
            .map(|(n, _)| format!("schemas/{n}")),
    );
    for rel in &config {
        let bytes = std::fs::read(dir.join(rel)).map_err(other)?;
        let v = treaty::governance::schema::parse(
            treaty::governance::FileKind::of(&treaty::path::RepoPath::new(rel).map_err(other)?),
            &bytes,
        )
        .map_err(other)?;
        let (_, ver) = treaty::governance::schema::header(&v).map_err(other)?;
        let env = approve(
            rel,
            &bytes,
            ver,
            vec![root_ref.clone()],
            Some(expires.clone()),
            &root_signers,
        )?;
        scaffold::write_atomic(&dir.join(format!("{rel}.sig")), &env)?;
    }
    let treaty_refs: Vec<GroupRef> = refs.values().cloned().collect();
    let signers = [&council[0], &council[1], &provider[0]];
    let from = treaty::time::format(now);
    let done = std::sync::atomic::AtomicUsize::new(0);
    (0..n)
        .into_par_iter()
        .try_for_each(|i| -> Result<(), BenchError> {
            let mut t = scaffold::treaty_json(i, &from, &expires);
            let infix = scaffold::NETWORKS[i % scaffold::NETWORKS.len()].1;
            let id = format!("AURORA-{infix}-{i:06}");
            t["treaty_id"] = id.clone().into();
            let rel = format!("treaties/{id}.json");
            let bytes = scaffold::json_bytes(&t);
            std::fs::write(dir.join(&rel), &bytes).map_err(other)?;
            let env = approve(
                &rel,
                &bytes,
                1,
                treaty_refs.clone(),
                Some(expires.clone()),
                &signers,
            )?;
            std::fs::write(dir.join(format!("{rel}.sig")), env).map_err(other)?;
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if d.is_multiple_of(500) || d == n {
                progress(d);
            }
            Ok(())
        })?;
    scaffold::commit_all(&repo, &format!("bench: {n} synthetic treaties"))?;
    Ok(())
}

/// What `treaty-bench verify` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub files: usize,
    pub approved: bool,
    pub signatures_checked: usize,
    /// Signatures of the floor that did not verify (must be 0 for the figure to mean anything).
    pub floor_failed: usize,
    pub threads: usize,
    /// The first full verify (cold: the page cache and the history index as they were).
    pub first_verify_s: f64,
    /// Full verify, warm, after that first run.
    pub full_verify: Stats,
    /// The same signature verifications alone, on the same pool.
    pub floor: Stats,
    /// `full_verify / floor` medians.
    pub ratio: f64,
    pub peak_rss_mb: Option<f64>,
    /// A repeat verify reusing the verdict cache (kept in a scratch directory, read from disk).
    pub repeat_verify: Stats,
    /// `repeat_verify / full_verify` medians.
    pub repeat_ratio: f64,
}

/// Measured runs after the warm-up, for every figure that takes a median.
const RUNS: usize = 5;

/// Peak resident set size of this process (Linux `VmHWM`), in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Full verification of HEAD in `dir`, then the floor: the same signature verifications that
/// verification performs (every entry of every treaty envelope, with the same keys and the same
/// `verify` calls), in a tight loop over the same thread pool.
pub fn verify(dir: &Path) -> Result<BenchReport, BenchError> {
    let repo = treaty::source::Repo::discover(dir).map_err(other)?;
    let opts = treaty::verify::Options {
        anchor: treaty::trust::Anchor::Repository,
        at: treaty::time::now(),
        exhaustive: false,
    };
    let full_run = || -> Result<(f64, treaty::verify::Report, treaty::source::Tree, Option<treaty::source::Tree>), BenchError> {
        let t0 = Instant::now();
        let head = repo.resolve("HEAD").map_err(other)?;
        let (tree, parent) = repo.tree_and_parent(head).map_err(other)?;
        let report = treaty::verify::verify_tree(&tree, parent.as_ref(), &opts);
        Ok((t0.elapsed().as_secs_f64() * 1e3, report, tree, parent))
    };
    let (first_ms, report, tree, parent) = full_run()?;
    let mut full_ms = Vec::new();
    for _ in 0..RUNS {
        let (ms, again, ..) = full_run()?;
        if again.approved != report.approved {
            return Err(other("two full runs disagreed"));
        }
        full_ms.push(ms);
    }
    let full = Stats::of(full_ms);
    // Keep the floor's inputs out of the memory figure: they are the benchmark's, not verify's.
    let rss = peak_rss_mb();

    // The floor's inputs, prepared outside the timed region.
    let mut keys: std::collections::HashMap<String, PublicKey> = std::collections::HashMap::new();
    for p in tree.entries.keys() {
        if treaty::governance::FileKind::of(p) != treaty::governance::FileKind::Group {
            continue;
        }
        if let Ok(b) = tree.read(p) {
            if let Ok(gf) = treaty::json::from_slice::<GroupFile>(&b) {
                if let Ok(g) = treaty::governance::model::Group::from_file(&gf) {
                    for m in &g.members {
                        for k in m.keys() {
                            keys.insert(k.key_id(), k.clone());
                        }
                    }
                }
            }
        }
    }
    let mut work: Vec<(std::sync::Arc<Vec<u8>>, PublicKey, Vec<u8>)> = Vec::new();
    for p in tree.entries.keys() {
        if !p.as_str().starts_with("treaties/") || !p.as_str().ends_with(".sig") {
            continue;
        }
        if let Ok(b) = tree.read(p) {
            if let Ok(env) = Envelope::parse(&b) {
                let msg = std::sync::Arc::new(env.signed_bytes());
                for s in env.signatures {
                    if let Some(k) = keys.get(&s.keyid) {
                        work.push((msg.clone(), k.clone(), s.sig));
                    }
                }
            }
        }
    }
    let mut ok = 0;
    let mut floor_ms = Vec::new();
    for i in 0..=RUNS {
        let t1 = Instant::now();
        ok = work.par_iter().filter(|(m, k, s)| k.verify(m, s)).count();
        if i > 0 {
            floor_ms.push(t1.elapsed().as_secs_f64() * 1e3);
        }
    }
    let floor = Stats::of(floor_ms);
    // The floor is only a floor if it did the work verify does: every signature must verify
    // (a floor over signatures that fail fast would flatter the comparison). The CLI refuses
    // to print a figure otherwise.
    let floor_failed = work.len() - ok;
    let signatures_checked = work.len();
    drop(work);

    // Repeat verification: populate the cache once, then time runs that load it from disk.
    // The cache lives in a scratch directory: the repository pointed at is only read.
    let scratch = tempfile_dir("treaty-bench-verify")?;
    let mut cache = treaty::cache::Cache::load(&scratch);
    let _ = treaty::verify::verify_tree_cached(&tree, parent.as_ref(), &opts, &mut cache);
    cache.save();
    let mut repeat_ms = Vec::new();
    for _ in 0..RUNS {
        let t2 = Instant::now();
        let mut cache = treaty::cache::Cache::load(&scratch);
        let head = repo.resolve("HEAD").map_err(other)?;
        let (tree2, parent2) = repo.tree_and_parent(head).map_err(other)?;
        let again = treaty::verify::verify_tree_cached(&tree2, parent2.as_ref(), &opts, &mut cache);
        repeat_ms.push(t2.elapsed().as_secs_f64() * 1e3);
        if again.approved != report.approved || again.summary.approved != report.summary.approved {
            return Err(other("a cached run disagreed with the full run"));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let repeat = Stats::of(repeat_ms);
    Ok(BenchReport {
        files: report.summary.files,
        approved: report.approved,
        signatures_checked,
        floor_failed,
        threads: rayon::current_num_threads(),
        first_verify_s: first_ms / 1e3,
        ratio: full.median_ms / floor.median_ms,
        repeat_ratio: repeat.median_ms / full.median_ms,
        full_verify: full,
        floor,
        peak_rss_mb: rss,
        repeat_verify: repeat,
    })
}

/// Timings of one command over several runs (after warm-ups), in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stats {
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Stats {
    fn of(mut v: Vec<f64>) -> Stats {
        v.sort_by(f64::total_cmp);
        Stats {
            runs: v.len(),
            median_ms: v.get(v.len() / 2).copied().unwrap_or(f64::NAN),
            min_ms: v.first().copied().unwrap_or(f64::NAN),
            max_ms: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:.1} ms (min {:.1}, max {:.1}, {} runs)",
            self.median_ms, self.min_ms, self.max_ms, self.runs
        )
    }
}

/// What `treaty-bench gate` measured: every figure a process against a process, each after
/// warm-ups, on the same copy of the repository.
#[derive(Debug, Clone, Serialize)]
pub struct GateBench {
    pub files: usize,
    /// `treaty gate --target main` (the pull-request lane: every gate over the changed files).
    pub gate: Stats,
    /// The floor for the pull-request lane's stub scan: `git diff -U0 BASE HEAD | grep -i
    /// temp.stub` (the added lines only; it judges nothing else).
    pub diff_grep: Stats,
    /// `gate / diff_grep` medians.
    pub ratio: f64,
    /// `treaty gate --target production` (the promotion lane: every file of the tree scanned).
    pub promotion: Stats,
    /// The floor for the promotion scan: `git grep -i temp.stub HEAD` over the whole tree.
    pub git_grep: Stats,
    /// `promotion / git_grep` medians.
    pub promotion_ratio: f64,
    pub passed: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs `cmd` `warmup` times unmeasured, then `runs` times measured; every run must exit with
/// one of `ok` (a floor that failed measured nothing).
fn time_process(
    mut cmd: impl FnMut() -> std::process::Command,
    warmup: usize,
    runs: usize,
    ok: &[i32],
) -> Result<Stats, BenchError> {
    let mut ms = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let mut c = cmd();
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let t0 = Instant::now();
        let status = c.status().map_err(other)?;
        let took = t0.elapsed().as_secs_f64() * 1e3;
        if !status.code().is_some_and(|c| ok.contains(&c)) {
            return Err(other(format!("{c:?} exited with {status}")));
        }
        if i >= warmup {
            ms.push(took);
        }
    }
    Ok(Stats::of(ms))
}

/// On a copy of a repository from [`generate`] (the repository pointed at is only read): a
/// pull request that changes one treaty, approved by its signers; then `treaty gate` as a
/// process against `git diff -U0 | grep` for the pull-request lane, and against `git grep`
/// of the tree for the promotion lane, each after warm-ups, medians of `runs` (at least 5).
pub fn gate(dir: &Path, runs: usize) -> Result<GateBench, BenchError> {
    let runs = runs.max(5);
    let scratch = tempfile_dir("treaty-bench-gate")?;
    let work = scratch.join("repo");
    let git = |args: &[&str]| -> Result<std::process::Output, BenchError> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&work)
            .args(args)
            .env("GIT_AUTHOR_NAME", "bench")
            .env("GIT_AUTHOR_EMAIL", "bench@localhost")
            .env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@localhost")
            .output()
            .map_err(other)?;
        if !out.status.success() {
            return Err(other(format!(
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(out)
    };
    let cloned = std::process::Command::new("git")
        .args(["clone", "-q", "--no-hardlinks"])
        .arg(dir)
        .arg(&work)
        .status()
        .map_err(other)?;
    if !cloned.success() {
        return Err(other(format!("git clone {} failed", dir.display())));
    }
    let source = treaty::source::Repo::discover(dir).map_err(other)?;
    let repo = treaty::source::Repo::discover(&work).map_err(other)?;
    // The synthetic signers' keys live in the source's .git (never its work tree): read them
    // there, write nothing back.
    let key_dir = source.repo.path().join("bench-keys");
    let load = |id: &str| {
        SigningKey::load(&key_dir.join(format!("{id}.key")), || Ok(String::new())).map_err(other)
    };
    let base = repo.resolve("HEAD").map_err(other)?.to_string();
    git(&["checkout", "-q", "-B", "bench-pr", &base])?;
    let rel = "treaties/AURORA-AKASH-000000.json";
    let mut t: serde_json::Value =
        treaty::json::from_slice(&std::fs::read(work.join(rel)).map_err(other)?).map_err(other)?;
    let v = t["version"].as_u64().unwrap_or(1) + 1;
    t["version"] = v.into();
    t["quotas"]["concurrent_jobs"] = (100 + v).into();
    let bytes = scaffold::json_bytes(&t);
    std::fs::write(work.join(rel), &bytes).map_err(other)?;
    let tree = treaty::source::tree_from_dir(&work).map_err(other)?;
    let rp = treaty::path::RepoPath::new(rel).map_err(other)?;
    let mut sig = std::fs::read(work.join(format!("{rel}.sig"))).ok();
    for id in ["council-1", "council-2", "provider-1"] {
        let s = treaty::sign::sign(&tree, &rp, &bytes, sig.as_deref(), &load(id)?, None)
            .map_err(other)?;
        sig = Some(s.envelope);
    }
    std::fs::write(work.join(format!("{rel}.sig")), sig.unwrap_or_default()).map_err(other)?;
    git(&["commit", "-q", "-am", "bench: change one treaty"])?;
    let head = repo.resolve("HEAD").map_err(other)?.to_string();

    let treaty_bin = std::env::current_exe()
        .map_err(other)?
        .with_file_name("treaty");
    let gate_cmd = |target: &'static str| {
        let (work, base, head, bin) =
            (work.clone(), base.clone(), head.clone(), treaty_bin.clone());
        move || {
            let mut c = std::process::Command::new(&bin);
            c.arg("-C")
                .arg(&work)
                .args(["gate", "--base", &base, "--head", &head, "--target", target]);
            c
        }
    };
    let sh = |script: String| {
        let work = work.clone();
        move || {
            let mut c = std::process::Command::new("sh");
            c.arg("-c").arg(&script).current_dir(&work);
            c
        }
    };
    // Whether the gate passed, from one more run.
    let passed = gate_cmd("main")()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(other)?
        .success();
    let warmup = 2;
    let gate_stats = time_process(gate_cmd("main"), warmup, runs, &[0, 1])?;
    // grep exits 1 when nothing matches: that is the honest outcome here.
    let diff_grep = time_process(
        sh(format!("git diff -U0 {base} {head} | grep -i temp.stub")),
        warmup,
        runs,
        &[0, 1],
    )?;
    let promotion = time_process(gate_cmd("production"), warmup, runs, &[0, 1])?;
    let git_grep = time_process(
        sh(format!("git grep -i temp.stub {head}")),
        warmup,
        runs,
        &[0, 1],
    )?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(GateBench {
        files: tree.entries.len(),
        ratio: gate_stats.median_ms / diff_grep.median_ms,
        promotion_ratio: promotion.median_ms / git_grep.median_ms,
        gate: gate_stats,
        diff_grep,
        promotion,
        git_grep,
        passed,
    })
}

/// A fresh, empty scratch directory under the system's temp directory.
pub fn tempfile_dir(prefix: &str) -> Result<std::path::PathBuf, BenchError> {
    let d = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&d).map_err(other)?;
    Ok(d)
}

/// The no-op guard measured on a history.
#[derive(Debug, Clone, Serialize)]
pub struct NoopBench {
    pub real_changes: usize,
    pub real_flagged_noop: Vec<String>,
    pub noop_changes: usize,
    pub noop_missed: Vec<String>,
}

/// Every first-parent commit of `dir`'s HEAD is a real change (a project's own history): how
/// many does the no-op guard flag?
pub fn noop_history(dir: &Path) -> Result<NoopBench, BenchError> {
    let repo = treaty::source::Repo::discover(dir).map_err(other)?;
    let mut walk = repo.repo.revwalk().map_err(other)?;
    walk.push_head().map_err(other)?;
    walk.simplify_first_parent().map_err(other)?;
    let mut out = NoopBench {
        real_changes: 0,
        real_flagged_noop: vec![],
        noop_changes: 0,
        noop_missed: vec![],
    };
    for id in walk {
        let id = id.map_err(other)?;
        let c = repo.repo.find_commit(id).map_err(other)?;
        let Some(parent) = c.parent_ids().next() else {
            continue;
        };
        out.real_changes += 1;
        if treaty::gate::is_noop(&repo, parent, id).map_err(other)? {
            out.real_flagged_noop.push(format!(
                "{} {}",
                &id.to_string()[..10],
                c.summary().ok().flatten().unwrap_or("")
            ));
        }
    }
    Ok(out)
}

/// A synthetic history of `n` labelled commits (real or no-op changes to JSON, TOML, YAML, Rust,
/// TypeScript, Python, shell and text files, including comment markers inside string literals,
/// renames, new files and mode changes), then the guard's errors in both directions.
pub fn noop_synthetic(dir: &Path, n: usize, seed: u64) -> Result<NoopBench, BenchError> {
    let repo = scaffold::ensure_repo(dir)?;
    let w = |rel: &str, s: &str| std::fs::write(dir.join(rel), s).map_err(other);
    let mut json =
        serde_json::json!({ "name": "demo", "limits": { "cpu": 4, "mem": 8 }, "tags": ["a", "b"] });
    let mut toml_t: toml::Table =
        toml::from_str("title = \"x\"\nlimit = 1\n[section]\nkey = \"v\"\n").map_err(other)?;
    let mut rs = String::from("pub fn f() -> u32 {\n    1\n}\n");
    let mut py = String::from("def f():\n    return 1\n");
    let mut sh = String::from("#!/bin/sh\necho start\n");
    let mut yaml = String::from("name: demo\ncount: 1\n");
    let mut ts = String::from("export const a = 1;\n");
    let txt = String::from("notes\n");
    let write_all = |json: &serde_json::Value,
                     toml_t: &toml::Table,
                     rs: &str,
                     py: &str,
                     sh: &str,
                     yaml: &str,
                     ts: &str,
                     txt: &str,
                     pretty: bool|
     -> Result<(), BenchError> {
        let j = if pretty {
            serde_json::to_string_pretty(json)
        } else {
            serde_json::to_string(json)
        }
        .map_err(other)?;
        w("a.json", &j)?;
        w("b.toml", &toml::to_string(toml_t).map_err(other)?)?;
        w("lib.rs", rs)?;
        w("tool.py", py)?;
        w("run.sh", sh)?;
        w("conf.yaml", yaml)?;
        w("app.ts", ts)?;
        w("notes.txt", txt)
    };
    write_all(&json, &toml_t, &rs, &py, &sh, &yaml, &ts, &txt, true)?;
    scaffold::commit_all(&repo, "synthetic: initial").map_err(other)?;
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut labels: Vec<(git2::Oid, git2::Oid, bool, String)> = Vec::new();
    let mut pretty = true;
    for i in 0..n {
        let before = repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map(|c| c.id())
            .map_err(other)?;
        let real = next() % 2 == 0;
        let what = next() % 8;
        let desc;
        if real {
            match what {
                0 => {
                    json["limits"]["cpu"] = (i as u64 + 5).into();
                    desc = "json value";
                }
                1 => {
                    toml_t.insert("limit".into(), toml::Value::Integer(i as i64 + 2));
                    desc = "toml value";
                }
                2 => {
                    rs.push_str(&format!("pub const C{i}: u32 = {i};\n"));
                    desc = "rust item";
                }
                3 => {
                    rs.push_str(&format!("pub const S{i}: &str = \"// {i}\";\n"));
                    desc = "rust string holding //";
                }
                4 => {
                    py.push_str(&format!("S{i} = '# {i}'\n"));
                    desc = "python string holding #";
                }
                5 => {
                    yaml = yaml.replace(
                        &format!(
                            "count: {}",
                            yaml.lines()
                                .find_map(|l| l.strip_prefix("count: "))
                                .unwrap_or("1")
                        ),
                        &format!("count: {}", i + 2),
                    );
                    desc = "yaml value";
                }
                6 => {
                    std::fs::write(dir.join(format!("new{i}.txt")), format!("file {i}\n"))
                        .map_err(other)?;
                    desc = "new file";
                }
                _ => {
                    let mode = if i % 2 == 0 { 0o755 } else { 0o644 };
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        std::fs::set_permissions(
                            dir.join("run.sh"),
                            std::fs::Permissions::from_mode(mode),
                        )
                        .map_err(other)?;
                    }
                    let _ = mode;
                    sh.push_str(&format!("echo {i}\n"));
                    desc = "mode change and a shell line";
                }
            }
        } else {
            match what {
                0 | 1 => {
                    pretty = !pretty;
                    desc = "json reformat";
                }
                2 => {
                    rs.push_str(&format!("// note {i}\n"));
                    desc = "rust comment";
                }
                3 => {
                    ts.push_str(&format!("/* note {i} */\n"));
                    desc = "ts comment";
                }
                4 => {
                    py.push_str(&format!("# note {i}\n"));
                    desc = "python comment";
                }
                5 => {
                    sh.push_str(&format!("   # note {i}\n"));
                    desc = "shell comment";
                }
                6 => {
                    yaml.push_str(&format!("# note {i}\n"));
                    desc = "yaml comment";
                }
                _ => {
                    // Whitespace in prose is content (issue 13): the formatting no-op is in code.
                    rs.push_str("\n  \n");
                    desc = "rust whitespace";
                }
            }
        }
        write_all(&json, &toml_t, &rs, &py, &sh, &yaml, &ts, &txt, pretty)?;
        let after = scaffold::commit_all(
            &repo,
            &format!("synthetic {i}: {}", if real { "real" } else { "no-op" }),
        )
        .map_err(other)?;
        if after != before {
            labels.push((before, after, real, format!("{i}: {desc}")));
        }
    }
    let r = treaty::source::Repo::discover(dir).map_err(other)?;
    let mut out = NoopBench {
        real_changes: 0,
        real_flagged_noop: vec![],
        noop_changes: 0,
        noop_missed: vec![],
    };
    for (b, a, real, desc) in labels {
        let flagged = treaty::gate::is_noop(&r, b, a).map_err(other)?;
        if real {
            out.real_changes += 1;
            if flagged {
                out.real_flagged_noop.push(desc);
            }
        } else {
            out.noop_changes += 1;
            if !flagged {
                out.noop_missed.push(desc);
            }
        }
    }
    Ok(out)
}
