//! The agent benchmark (`treaty-bench agent DIR`): on a repository from `treaty-bench gen`
//! with one treaty changed upstream, the agent's pull + verify + emit after the fetch, against
//! a full verification of the same state; a poll when nothing changed; and a fleet of agents
//! against one `git daemon` on loopback (time until all applied the new commit, and the
//! daemon's CPU). It measures; it never asserts a speed.

use serde::Serialize;
use std::path::Path;
use std::time::Instant;

use treaty::agent::{self, Config, DirStore, Sink};
use treaty::crypto::SigningKey;

#[derive(Debug, Clone, Serialize)]
pub struct AgentBench {
    pub files: usize,
    pub initial_apply_s: f64,
    pub initial_commands: usize,
    pub incremental_judge_ms: f64,
    pub incremental_commands: usize,
    pub full_verify_ms: f64,
    pub ratio: f64,
    pub unchanged_poll_ms: f64,
    pub fleet_agents: usize,
    pub fleet_all_applied_s: Option<f64>,
    pub fleet_daemon_cpu_s: Option<f64>,
}

struct Null;

impl Sink for Null {
    fn deliver(&mut self, _: &serde_json::Value) -> Result<(), treaty::agent::sink::SinkError> {
        Ok(())
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A synthetic repository's key (`.git/bench-keys`) or a demo federation's (`demo-keys/`).
fn key(dir: &Path, id: &str) -> Result<SigningKey, String> {
    let git = git2::Repository::open(dir).map_err(err)?;
    let bench = git.path().join(format!("bench-keys/{id}.key"));
    let path = if bench.exists() {
        bench
    } else {
        dir.join(format!("demo-keys/{id}.key"))
    };
    SigningKey::load(&path, || Ok(String::new())).map_err(err)
}

fn sign(dir: &Path, rel: &str, ids: &[&str]) -> Result<(), String> {
    let rp = treaty::path::RepoPath::new(rel).map_err(err)?;
    for id in ids {
        let tree = treaty::source::tree_from_dir(dir).map_err(err)?;
        let bytes = std::fs::read(dir.join(rel)).map_err(err)?;
        let sig = dir.join(format!("{rel}.sig"));
        let existing = std::fs::read(&sig).ok();
        let s = treaty::sign::sign(
            &tree,
            &rp,
            &bytes,
            existing.as_deref(),
            &key(dir, id)?,
            None,
        )
        .map_err(err)?;
        treaty::scaffold::write_atomic(&sig, &s.envelope).map_err(err)?;
    }
    Ok(())
}

fn commit(dir: &Path, msg: &str) -> Result<(), String> {
    let repo = git2::Repository::open(dir).map_err(err)?;
    treaty::scaffold::commit_all(&repo, msg).map_err(err)?;
    Ok(())
}

/// Writes and signs a snapshot and a heartbeat of the committed state (the bench root gives
/// the `snapshot` role to the council), then commits.
fn resnapshot(dir: &Path, online: &[&str]) -> Result<(), String> {
    let repo = treaty::source::Repo::discover(dir).map_err(err)?;
    let tree = repo
        .tree_at(repo.resolve("HEAD").map_err(err)?)
        .map_err(err)?;
    let snap = treaty::snapshot::build(&tree, 1);
    let bytes = treaty::snapshot::to_bytes(&snap);
    std::fs::create_dir_all(dir.join("state")).map_err(err)?;
    treaty::scaffold::write_atomic(&dir.join(treaty::snapshot::SNAPSHOT_PATH), &bytes)
        .map_err(err)?;
    sign(dir, treaty::snapshot::SNAPSHOT_PATH, online)?;
    let hb = treaty::snapshot::heartbeat(
        &tree,
        &bytes,
        treaty::time::now(),
        time::Duration::hours(24),
    )
    .map_err(|e| e.to_string())?;
    treaty::scaffold::write_atomic(
        &dir.join(treaty::snapshot::HEARTBEAT_PATH),
        &treaty::snapshot::to_bytes(&hb),
    )
    .map_err(err)?;
    sign(dir, treaty::snapshot::HEARTBEAT_PATH, online)?;
    commit(dir, "bench: snapshot and heartbeat")
}

/// Who signs what in a `bench gen` repository and in the demo federation.
struct Signers<'a> {
    treaty: &'a [&'a str],
    online: &'a [&'a str],
}

const BENCH: Signers<'static> = Signers {
    treaty: &["council-1", "council-2", "provider-1"],
    online: &["council-1", "council-2"],
};

const DEMO: Signers<'static> = Signers {
    treaty: &["council-1", "council-2", "aethir-1"],
    online: &["ci-1"],
};

fn change_one(dir: &Path, round: u64, who: &Signers<'_>) -> Result<(), String> {
    let rel = std::fs::read_dir(dir.join("treaties"))
        .map_err(err)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .min()
        .ok_or("no treaties")?;
    let rel = format!("treaties/{rel}");
    let mut t: serde_json::Value =
        treaty::json::from_slice(&std::fs::read(dir.join(&rel)).map_err(err)?).map_err(err)?;
    t["version"] = (t["version"].as_u64().unwrap_or(1) + 1).into();
    t["quotas"]["concurrent_jobs"] = (100 + round).into();
    treaty::scaffold::write_atomic(&dir.join(&rel), &treaty::scaffold::json_bytes(&t))
        .map_err(err)?;
    sign(dir, &rel, who.treaty)?;
    commit(dir, "bench: change one treaty")?;
    resnapshot(dir, who.online)
}

/// How many times the incremental pull is measured (median reported).
const INCREMENTAL_RUNS: usize = 5;

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(err)?;
    for e in std::fs::read_dir(from).map_err(err)? {
        let e = e.map_err(err)?;
        let dest = to.join(e.file_name());
        if e.file_type().map_err(err)?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), &dest).map_err(err)?;
        }
    }
    Ok(())
}

fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14–17 of stat (utime, stime, cutime, cstime) are 12–15 after the name.
    let ticks: f64 = f
        .get(11..15)?
        .iter()
        .filter_map(|x| x.parse::<f64>().ok())
        .sum();
    Some(ticks / 100.0)
}

/// Runs the benchmark on `dir` (from `treaty-bench gen`), using `work` for agent state.
pub fn run(source: &Path, work: &Path, fleet: usize) -> Result<AgentBench, String> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).map_err(err)?;
    // The benchmark commits upstream changes: it does so in its own clone under `work`, so the
    // repository it was pointed at is only read (its keys copied into the clone, never the
    // other way).
    let upstream = work.join("upstream");
    let st = std::process::Command::new("git")
        .args(["clone", "-q", "--no-hardlinks"])
        .arg(source)
        .arg(&upstream)
        .status()
        .map_err(err)?;
    if !st.success() {
        return Err(format!("cannot clone {}", source.display()));
    }
    let source_git = git2::Repository::open(source).map_err(err)?;
    let bench_keys = source_git.path().join("bench-keys");
    if bench_keys.is_dir() {
        copy_dir(&bench_keys, &upstream.join(".git/bench-keys"))?;
    }
    if source.join("demo-keys").is_dir() {
        copy_dir(&source.join("demo-keys"), &upstream.join("demo-keys"))?;
    }
    let dir = upstream.as_path();
    // The agent follows `main`, whatever the source had checked out.
    let st = std::process::Command::new("git")
        .args(["checkout", "-q", "-B", "main", "origin/main"])
        .current_dir(dir)
        .status()
        .map_err(err)?;
    if !st.success() {
        return Err("cannot check out main".into());
    }
    if !dir.join(treaty::snapshot::SNAPSHOT_PATH).exists() {
        resnapshot(dir, BENCH.online)?;
    }
    let cfg = Config {
        remote: dir.display().to_string(),
        refname: "main".into(),
        anchor: treaty::trust::Anchor::Repository,
        max_heartbeat_age: time::Duration::hours(26),
        skew: time::Duration::minutes(5),
        allow_stale: false,
        repository: "bench".into(),
        audit: false,
        ssh_key: None,
    };
    let state = work.join("agent");
    std::fs::create_dir_all(&state).map_err(err)?;
    let store = DirStore { dir: state.clone() };
    // One pull of the benchmark's agent, as the binary would run it (commands discarded).
    let pull = || {
        agent::step(
            &state,
            &store,
            &cfg,
            &mut Null,
            treaty::time::now(),
            &mut |_| {},
        )
        .map_err(err)
    };
    let t = Instant::now();
    let first = pull()?;
    let initial_apply_s = t.elapsed().as_secs_f64();
    let initial_commands = match first {
        agent::Outcome::Applied { commands, .. } => commands,
        agent::Outcome::Unchanged => 0,
    };
    change_one(dir, 1, &BENCH)?;
    // Fetch, then time what the agent does after it.
    let mirror = state.join("mirror.git");
    let commit_id = agent::fetch(&mirror, &cfg).map_err(err)?;
    let applied: agent::Applied =
        treaty::json::from_slice(&std::fs::read(state.join("applied.json")).map_err(err)?)
            .map_err(err)?;
    // Each run starts from a copy of the mirror as it was before this pull (its verdict and
    // facts caches included), so no run profits from the one before; the median is reported.
    let mut runs = Vec::new();
    let mut cmds = Vec::new();
    for i in 0..INCREMENTAL_RUNS {
        let copy = work.join(format!("mirror-run-{i}.git"));
        copy_dir(&mirror, &copy)?;
        let t = Instant::now();
        let (_, c) = agent::judge(
            &copy,
            commit_id,
            Some(&applied),
            &cfg,
            treaty::time::now(),
            &mut |_| {},
        )
        .map_err(err)?;
        runs.push(t.elapsed().as_secs_f64() * 1e3);
        cmds = c;
        let _ = std::fs::remove_dir_all(&copy);
    }
    runs.sort_by(f64::total_cmp);
    let incremental_judge_ms = runs[runs.len() / 2];
    let incremental_commands = cmds.len();
    // The full verification of the same state, no cache.
    let repo = treaty::source::Repo::discover(&mirror).map_err(err)?;
    let tree = repo.tree_at(commit_id).map_err(err)?;
    let t = Instant::now();
    let r = treaty::verify::verify_tree(
        &tree,
        None,
        &treaty::verify::Options {
            anchor: treaty::trust::Anchor::Repository,
            at: treaty::time::now(),
            exhaustive: false,
        },
    );
    let full_verify_ms = t.elapsed().as_secs_f64() * 1e3;
    if !r.approved {
        return Err("the benchmark state is not approved".into());
    }
    pull()?;
    let t = Instant::now();
    let o = pull()?;
    let unchanged_poll_ms = t.elapsed().as_secs_f64() * 1e3;
    if o != agent::Outcome::Unchanged {
        return Err("the poll was not unchanged".into());
    }
    // The fleet: N agents against one git daemon on loopback serving the example federation.
    let (mut fleet_all_applied_s, mut fleet_daemon_cpu_s) = (None, None);
    if fleet > 0 {
        let dir = &work.join("federation");
        treaty::scaffold::demo(dir, true).map_err(err)?;
        let exec = String::from_utf8(
            std::process::Command::new("git")
                .arg("--exec-path")
                .output()
                .map_err(err)?
                .stdout,
        )
        .map_err(err)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(err)?
            .port();
        let base = dir.parent().ok_or("no parent")?;
        let name = dir
            .file_name()
            .ok_or("no name")?
            .to_string_lossy()
            .into_owned();
        let mut daemon = std::process::Command::new(Path::new(exec.trim()).join("git-daemon"))
            .args([
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                "--max-connections=0",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(err)?;
        std::thread::sleep(std::time::Duration::from_millis(300));
        let url = format!("git://127.0.0.1:{port}/{name}");
        let agent_bin = std::env::current_exe()
            .map_err(err)?
            .with_file_name("treaty-agent");
        let spawn_all = |tag: &str| -> Result<f64, String> {
            let t = Instant::now();
            let children: Vec<_> = (0..fleet)
                .map(|i| {
                    std::process::Command::new(&agent_bin)
                        .args(["--once", "--remote", &url, "--ref", &cfg.refname, "--state"])
                        .arg(work.join(format!("fleet-{i}")))
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                })
                .collect::<Result<_, _>>()
                .map_err(err)?;
            for mut c in children {
                let st = c.wait().map_err(err)?;
                if !st.success() {
                    return Err(format!("a fleet agent failed ({tag}): {st}"));
                }
            }
            Ok(t.elapsed().as_secs_f64())
        };
        let outcome = (|| -> Result<(f64, f64), String> {
            spawn_all("initial")?;
            change_one(dir, 2, &DEMO)?;
            let cpu0 = cpu_seconds(daemon.id()).unwrap_or(0.0);
            let all = spawn_all("new commit")?;
            let cpu1 = cpu_seconds(daemon.id()).unwrap_or(0.0);
            Ok((all, cpu1 - cpu0))
        })();
        let _ = daemon.kill();
        let _ = daemon.wait();
        let (all, cpu) = outcome?;
        fleet_all_applied_s = Some(all);
        fleet_daemon_cpu_s = Some(cpu);
    }
    Ok(AgentBench {
        files: r.summary.files,
        initial_apply_s,
        initial_commands,
        incremental_judge_ms,
        incremental_commands,
        full_verify_ms,
        ratio: incremental_judge_ms / full_verify_ms,
        unchanged_poll_ms,
        fleet_agents: fleet,
        fleet_all_applied_s,
        fleet_daemon_cpu_s,
    })
}
