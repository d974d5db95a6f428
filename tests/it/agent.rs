//! treaty-agent against real git remotes (a bare repository the test makes): applies approved
//! state once, only changes afterwards, and refuses everything else without delivering.

use crate::common::*;
use std::path::{Path, PathBuf};
use treaty::agent::{self, Config, DirStore, Outcome, Refusal, Sink, SpoolSink, Store};

struct Fleet {
    g: Gov,
    remote: PathBuf,
    state: PathBuf,
    spool: PathBuf,
}

impl Fleet {
    fn new() -> Fleet {
        let g = Gov::demo();
        let remote = g.path("../remote.git");
        let st = std::process::Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(&g.dir)
            .arg(&remote)
            .status()
            .unwrap();
        assert!(st.success());
        Fleet {
            state: g.path("../agent-state"),
            spool: g.path("../spool"),
            remote,
            g,
        }
    }

    fn push(&self, force: bool) {
        let r = self.remote.display().to_string();
        let mut args = vec!["push", "-q", r.as_str(), "HEAD:main"];
        if force {
            args.push("--force");
        }
        self.g.git(&args);
    }

    fn agent(&self, extra: &[&str]) -> (i32, String) {
        let out = assert_cmd::Command::cargo_bin("treaty-agent")
            .unwrap()
            .args(["--once", "--remote"])
            .arg(&self.remote)
            .arg("--state")
            .arg(&self.state)
            .arg("--spool")
            .arg(&self.spool)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn spooled(&self) -> usize {
        std::fs::read_dir(&self.spool).map_or(0, |d| d.count())
    }

    /// An approved change to AKASH with a new snapshot and heartbeat, committed.
    fn change(&self, jobs: u64) {
        let mut t = self.g.json(AKASH);
        t["version"] = (t["version"].as_u64().unwrap() + 1).into();
        t["quotas"]["concurrent_jobs"] = jobs.into();
        self.g.write_json(AKASH, &t);
        self.g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
        self.g.commit("change AKASH");
        self.resnapshot();
    }

    fn resnapshot(&self) {
        self.g
            .treaty()
            .args(["snapshot", "--key", "demo-keys/ci-1.key"])
            .assert()
            .success();
        self.g
            .treaty()
            .args(["heartbeat", "--key", "demo-keys/ci-1.key"])
            .assert()
            .success();
        self.g.commit("snapshot");
    }
}

#[test]
fn the_agent_applies_the_state_once_then_only_changes() {
    let f = Fleet::new();
    let (code, log) = f.agent(&[]);
    assert_eq!(code, 0, "{log}");
    let first = f.spooled();
    assert!(first >= 18, "{first}");
    // Nothing changed: one ref comparison, nothing delivered.
    let (code, log) = f.agent(&[]);
    assert_eq!(code, 0);
    assert!(log.contains("unchanged"));
    assert_eq!(f.spooled(), first);
    f.change(100);
    f.push(false);
    let (code, log) = f.agent(&[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(f.spooled(), first + 1, "only the treaty.update");
    let applied: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.state.join("applied.json")).unwrap()).unwrap();
    assert_eq!(applied["snapshot_version"], 2);
    assert_eq!(applied["versions"][AKASH], 2);
    // With --audit, each applied step lands in the mirror's audit log.
    f.change(101);
    f.push(false);
    let (code, log) = f.agent(&["--audit"]);
    assert_eq!(code, 0, "{log}");
    let mirror = git2::Repository::open_bare(f.state.join("mirror.git")).unwrap();
    let s = treaty::audit::store::scan(
        &mirror,
        treaty::audit::store::resolve(&mirror, None).unwrap(),
        None,
        true,
    )
    .unwrap();
    assert_eq!(s.entries.len(), 1);
    let e: serde_json::Value = serde_json::from_slice(&s.entries[0]).unwrap();
    assert_eq!(e["kind"], "agent.apply");
    assert_eq!(e["commit"], f.g.git(&["rev-parse", "HEAD"]).trim());
}

#[test]
fn unapproved_mixed_stale_rolled_back_or_rewritten_states_are_refused_with_nothing_delivered() {
    let f = Fleet::new();
    assert_eq!(f.agent(&[]).0, 0);
    f.change(100);
    f.push(false);
    assert_eq!(f.agent(&[]).0, 0);
    let good = f.g.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let n = f.spooled();
    let refused = |f: &Fleet, extra: &[&str], reason: &str| {
        let (code, log) = f.agent(extra);
        assert_eq!(code, 1, "{reason}: {log}");
        assert!(log.contains(reason), "{reason}: {log}");
        assert_eq!(f.spooled(), n, "{reason}: nothing delivered");
    };
    // Signatures stripped.
    f.g.git(&["rm", "-q", &format!("{AKASH}.sig")]);
    f.g.commit("strip");
    f.push(false);
    refused(&f, &[], "unapproved");
    // An approved change without a new snapshot: the tree no longer matches it.
    f.g.git(&["reset", "-q", "--hard", &good]);
    let mut t = f.g.json(IONET);
    t["version"] = 2.into();
    t["quotas"]["concurrent_jobs"] = 1.into();
    f.g.write_json(IONET, &t);
    f.g.sign(IONET, &["council-1", "council-2", "ionet-1"]);
    f.g.commit("IONET without a snapshot");
    f.push(true);
    refused(&f, &[], "snapshot-mismatch");
    // Force-pushed back to an older approved commit: rollback.
    f.push_old(&good);
    refused(&f, &[], "rollback");
    // A rewritten history (same content, another commit): not a descendant of what was applied.
    f.g.git(&["reset", "-q", "--hard", &good]);
    f.g.git(&["commit", "-q", "--amend", "-m", "rewritten"]);
    f.push(true);
    refused(&f, &[], "history-rewritten");
    // A stale heartbeat: refused; --allow-stale waives only that, loudly.
    f.g.git(&["reset", "-q", "--hard", &good]);
    f.change(200);
    f.push(true);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    refused(
        &f,
        &["--max-heartbeat-age", "1s", "--skew", "1s"],
        "stale-heartbeat",
    );
    let (code, log) = f.agent(&["--max-heartbeat-age", "1s", "--skew", "1s", "--allow-stale"]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("WARNING: --allow-stale"));
    assert_eq!(f.spooled(), n + 1);
}

impl Fleet {
    /// Force-pushes the commit before `good`'s snapshot commit (an older approved state).
    fn push_old(&self, good: &str) {
        let old = self.g.git(&["rev-parse", &format!("{good}~2")]);
        let r = self.remote.display().to_string();
        self.g.git(&[
            "push",
            "-q",
            "--force",
            &r,
            &format!("{}:refs/heads/main", old.trim()),
        ]);
    }
}

#[test]
fn an_unreachable_remote_cannot_be_judged_and_a_wrong_pinned_root_is_refused() {
    let f = Fleet::new();
    let gone = f.g.path("../moved.git");
    std::fs::rename(&f.remote, &gone).unwrap();
    let (code, log) = f.agent(&[]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("remote-unreachable"));
    std::fs::rename(&gone, &f.remote).unwrap();
    assert_eq!(f.agent(&[]).0, 0, "back again");
    // A root that is not in the chain.
    let mut root = f.g.json("keys/root.json");
    root["version"] = 7.into();
    let pinned = f.g.path("../other-root.json");
    std::fs::write(&pinned, serde_json::to_vec(&root).unwrap()).unwrap();
    let state2 = f.g.path("../state2");
    let out = assert_cmd::Command::cargo_bin("treaty-agent")
        .unwrap()
        .args(["--once", "--remote"])
        .arg(&f.remote)
        .arg("--state")
        .arg(&state2)
        .arg("--trust")
        .arg(&pinned)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing delivered");
    // Pinned by root group id: another group is refused, this repository's is followed.
    let by_group = |id: &str, state: &str| {
        assert_cmd::Command::cargo_bin("treaty-agent")
            .unwrap()
            .args(["--once", "--remote"])
            .arg(&f.remote)
            .arg("--state")
            .arg(f.g.path(state))
            .args(["--trust", id])
            .output()
            .unwrap()
    };
    let out = by_group(&format!("blake3:{}", "cd".repeat(32)), "../state3");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing delivered");
    let own = f.g.json("keys/root.json")["root_group"]["group_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = by_group(&own, "../state4");
    assert_pulled_the_federation(&out);
}

/// A sink that fails after `ok` deliveries (a crash or a failing hook mid-step).
struct Flaky {
    ok: usize,
    seen: Vec<String>,
}

impl Sink for Flaky {
    fn deliver(&mut self, cmd: &serde_json::Value) -> Result<(), treaty::agent::sink::SinkError> {
        if self.seen.len() >= self.ok {
            return Err(treaty::agent::sink::SinkError::Exited {
                program: "hook".into(),
                status: std::os::unix::process::ExitStatusExt::from_raw(256),
            });
        }
        self.seen
            .push(cmd["idempotency_key"].as_str().unwrap().to_owned());
        Ok(())
    }
}

/// Which kind of write the storage seam is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    Replace,
    Remove,
    Append,
}

/// A store whose every write first asks `fault` (full, read-only or crashing storage, through
/// the seam: CI runs as root, where a chmod would prove nothing). Reads always work.
struct Faulty<F: Fn(Write) -> std::io::Result<()>> {
    inner: DirStore,
    fault: F,
}

impl<F: Fn(Write) -> std::io::Result<()>> Store for Faulty<F> {
    fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        self.inner.read(name)
    }
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        (self.fault)(Write::Replace)?;
        self.inner.write_atomic(name, bytes)
    }
    fn remove(&self, name: &str) -> std::io::Result<()> {
        (self.fault)(Write::Remove)?;
        self.inner.remove(name)
    }
    fn append(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        (self.fault)(Write::Append)?;
        self.inner.append(name, bytes)
    }
}

/// A full disk: nothing can be written or appended (removing still works).
fn full(inner: DirStore) -> Faulty<impl Fn(Write) -> std::io::Result<()>> {
    Faulty {
        inner,
        fault: |w| {
            if w == Write::Remove {
                Ok(())
            } else {
                Err(std::io::Error::other("No space left on device"))
            }
        },
    }
}

/// Storage that "crashes" at its `limit`-th write (atomic write, append or remove): that
/// operation and everything after it never happen, as with power lost at that instant.
fn crash_at(inner: DirStore, limit: usize) -> Faulty<impl Fn(Write) -> std::io::Result<()>> {
    let writes = std::cell::Cell::new(0usize);
    Faulty {
        inner,
        fault: move |_| {
            let n = writes.get();
            writes.set(n + 1);
            if n >= limit {
                return Err(std::io::Error::other("crashed"));
            }
            Ok(())
        },
    }
}

/// Storage that turns read-only (EROFS) whenever `flag` is set.
fn switchable(
    inner: DirStore,
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Faulty<impl Fn(Write) -> std::io::Result<()>> {
    Faulty {
        inner,
        fault: move |_| {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ReadOnlyFilesystem,
                    "Read-only file system",
                ));
            }
            Ok(())
        },
    }
}

/// The agent exited 0 and emitted (at least) the demo federation's commands.
fn assert_pulled_the_federation(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 18);
}

fn cfg(remote: &Path) -> Config {
    Config {
        remote: remote.display().to_string(),
        refname: "main".into(),
        anchor: treaty::trust::Anchor::Repository,
        max_heartbeat_age: time::Duration::hours(26),
        skew: time::Duration::minutes(5),
        allow_stale: false,
        repository: "gov".into(),
        audit: false,
        ssh_key: None,
    }
}

#[test]
fn an_interrupted_delivery_resumes_without_losing_or_repeating_commands() {
    let f = Fleet::new();
    std::fs::create_dir_all(&f.state).unwrap();
    let store = DirStore {
        dir: f.state.clone(),
    };
    let c = cfg(&f.remote);
    let now = treaty::time::now();
    let mut quiet = |_: String| {};
    // Full disk: the write-ahead record cannot be written, so nothing is delivered.
    let mut sink = Flaky {
        ok: 100,
        seen: vec![],
    };
    let r = agent::step(
        &f.state,
        &full(store.clone()),
        &c,
        &mut sink,
        now,
        &mut quiet,
    );
    assert!(matches!(r, Err(Refusal::Storage(_))), "{r:?}");
    assert!(sink.seen.is_empty());
    // Fails after 5 commands: 5 recorded as done, the step is not applied.
    let mut sink = Flaky {
        ok: 5,
        seen: vec![],
    };
    let r = agent::step(&f.state, &store, &c, &mut sink, now, &mut quiet);
    assert!(matches!(r, Err(Refusal::Delivery(_))), "{r:?}");
    assert!(f.state.join("inflight.json").exists() && !f.state.join("applied.json").exists());
    // The restart delivers the rest, once each, then records the state.
    let mut spool = SpoolSink {
        dir: f.spool.clone(),
    };
    let r = agent::step(&f.state, &store, &c, &mut spool, now, &mut quiet).unwrap();
    assert_eq!(r, Outcome::Unchanged, "recovered, then nothing new");
    let total = serde_json::from_slice::<treaty::agent::Applied>(
        &std::fs::read(f.state.join("applied.json")).unwrap(),
    )
    .unwrap();
    assert!(!total.commit.is_empty());
    let spooled: Vec<String> = std::fs::read_dir(&f.spool)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    for k in &sink.seen {
        assert!(
            !spooled.contains(k),
            "a command recorded as done was delivered again"
        );
    }
    assert!(spooled.len() + sink.seen.len() >= 18);
    assert!(!f.state.join("inflight.json").exists());
}

/// Every crash point of a step, one by one (the deterministic twin of the `kill -9` test):
/// after a crash at any write of the state directory and a restart, every command has arrived
/// and at most one arrived twice (the one whose delivery was not yet recorded).
#[test]
fn a_crash_at_any_write_of_a_step_then_a_restart_loses_nothing_and_repeats_at_most_one() {
    let f = Fleet::new();
    for audit in [false, true] {
        crash_points(&f, audit);
    }
}

/// With `audit`, the step is also logged: exactly once, whatever write the crash hit.
fn crash_points(f: &Fleet, audit: bool) {
    let mut c = cfg(&f.remote);
    c.audit = audit;
    let now = treaty::time::now();
    let mut quiet = |_: String| {};
    let mut limit = 0;
    loop {
        let state = f.g.path(&format!("../crash-{audit}-{limit}"));
        std::fs::create_dir_all(&state).unwrap();
        let inner = DirStore { dir: state.clone() };
        let crashing = crash_at(inner.clone(), limit);
        let mut before = Flaky {
            ok: usize::MAX,
            seen: vec![],
        };
        let first = agent::step(&state, &crashing, &c, &mut before, now, &mut quiet);
        if first.is_ok() {
            // No write left to crash at: every point has been tried.
            assert!(limit > 20, "only {limit} crash points");
            break;
        }
        let mut after = Flaky {
            ok: usize::MAX,
            seen: vec![],
        };
        let again = agent::step(&state, &inner, &c, &mut after, now, &mut quiet);
        assert!(again.is_ok(), "crash at write {limit}: {again:?}");
        let mut all: Vec<&String> = before.seen.iter().chain(&after.seen).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert!(all.len() >= 18, "crash at write {limit}: lost commands");
        assert!(
            n - all.len() <= 1,
            "crash at write {limit}: {} repeats",
            n - all.len()
        );
        let applied: serde_json::Value =
            serde_json::from_slice(&std::fs::read(state.join("applied.json")).unwrap()).unwrap();
        let head = f.g.git(&["rev-parse", "HEAD"]);
        assert_eq!(applied["commit"], head.trim(), "crash at write {limit}");
        if audit {
            let repo = git2::Repository::open_bare(state.join("mirror.git")).unwrap();
            let at = treaty::audit::store::resolve(&repo, None).unwrap();
            let log = treaty::audit::store::scan(&repo, at, None, true).unwrap();
            let applies = log
                .entries
                .iter()
                .filter_map(|e| serde_json::from_slice::<serde_json::Value>(e).ok())
                .filter(|e| e["kind"] == "agent.apply" && e["commit"] == head.trim())
                .count();
            assert_eq!(applies, 1, "crash at write {limit}: logged {applies} times");
        }
        limit += 1;
    }
}

/// A sink that turns the store read-only right after its `after`-th delivery.
struct TurnsReadOnly {
    after: usize,
    seen: Vec<String>,
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Sink for TurnsReadOnly {
    fn deliver(&mut self, cmd: &serde_json::Value) -> Result<(), treaty::agent::sink::SinkError> {
        self.seen
            .push(cmd["idempotency_key"].as_str().unwrap().to_owned());
        if self.seen.len() == self.after {
            self.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Read-only storage (distinct from a full disk: nothing can be written, removed or appended):
/// a store that turns read-only mid-delivery stops at the first command it cannot record; while
/// it stays read-only a restart delivers nothing at all (the done log is probed first); once
/// writable, the rest is delivered and only the one unrecorded command arrives twice.
#[test]
fn read_only_storage_stops_delivery_at_the_first_unrecordable_command_and_resumes() {
    let f = Fleet::new();
    std::fs::create_dir_all(&f.state).unwrap();
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store = switchable(
        DirStore {
            dir: f.state.clone(),
        },
        flag.clone(),
    );
    let c = cfg(&f.remote);
    let now = treaty::time::now();
    let mut quiet = |_: String| {};
    let mut sink = TurnsReadOnly {
        after: 3,
        seen: vec![],
        flag: flag.clone(),
    };
    let r = agent::step(&f.state, &store, &c, &mut sink, now, &mut quiet);
    match &r {
        Err(Refusal::Storage(m)) => assert!(m.contains("Read-only"), "{m}"),
        other => panic!("expected a storage refusal, got {other:?}"),
    }
    assert_eq!(
        sink.seen.len(),
        3,
        "stopped at the first unrecorded command"
    );
    assert!(!f.state.join("applied.json").exists());
    let done = std::fs::read_to_string(f.state.join("inflight.done")).unwrap();
    assert_eq!(done.lines().count(), 2, "two recorded, the third not");
    // Still read-only: a restart delivers nothing.
    let mut still = Flaky {
        ok: 100,
        seen: vec![],
    };
    let r = agent::step(&f.state, &store, &c, &mut still, now, &mut quiet);
    assert!(matches!(r, Err(Refusal::Storage(_))), "{r:?}");
    assert!(still.seen.is_empty(), "{:?}", still.seen);
    // Writable again: the rest, then the state is recorded.
    flag.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut rest = Flaky {
        ok: 100,
        seen: vec![],
    };
    let r = agent::step(&f.state, &store, &c, &mut rest, now, &mut quiet).unwrap();
    assert_eq!(r, Outcome::Unchanged, "recovered, then nothing new");
    assert!(f.state.join("applied.json").exists());
    assert!(!f.state.join("inflight.json").exists());
    assert_eq!(rest.seen[0], sink.seen[2], "the unrecorded one again");
    assert!(
        !rest.seen.contains(&sink.seen[0]) && !rest.seen.contains(&sink.seen[1]),
        "nothing recorded as done is delivered again"
    );
    let mut all: Vec<&String> = sink.seen.iter().chain(&rest.seen).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(n - all.len(), 1, "exactly one repeat");
    assert!(all.len() >= 18);
}

#[test]
fn an_exec_hook_that_fails_or_hangs_stops_the_step_and_a_later_success_completes_it() {
    let f = Fleet::new();
    let out = f.g.path("../hook-out");
    std::fs::create_dir_all(&out).unwrap();
    let hook = f.g.path("../hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nset -e\n[ -e {out}/FAIL ] && exit 1\n[ -e {out}/HANG ] && exec sleep 30\ncat > {out}/$TREATY_IDEMPOTENCY_KEY.json\n",
            out = out.display()
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let o = assert_cmd::Command::cargo_bin("treaty-agent")
            .unwrap()
            .args(["--once", "--remote"])
            .arg(&f.remote)
            .arg("--state")
            .arg(&f.state)
            .args(["--exec", "sh", "--exec-arg"])
            .arg(&hook)
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let count = || {
        std::fs::read_dir(&out)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".json")
            })
            .count()
    };
    std::fs::write(out.join("FAIL"), "").unwrap();
    let (code, log) = run(&[]);
    assert_eq!(code, 1);
    assert!(
        log.contains("delivery-failed") && log.contains("exited"),
        "{log}"
    );
    std::fs::remove_file(out.join("FAIL")).unwrap();
    std::fs::write(out.join("HANG"), "").unwrap();
    let t = std::time::Instant::now();
    let (code, log) = run(&["--exec-timeout", "1s"]);
    assert_eq!(code, 1);
    assert!(log.contains("killed"), "{log}");
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    std::fs::remove_file(out.join("HANG")).unwrap();
    let (code, log) = run(&[]);
    assert_eq!(code, 0, "{log}");
    assert!(count() >= 18);
    assert!(!f.state.join("inflight.json").exists());
}

#[test]
fn health_readiness_and_metrics_are_served_on_loopback_only() {
    use std::io::{Read, Write};
    let f = Fleet::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("treaty-agent"))
        .args([
            "--interval",
            "1s",
            "--metrics",
            &format!("127.0.0.1:{port}"),
            "--remote",
        ])
        .arg(&f.remote)
        .arg("--state")
        .arg(&f.state)
        .arg("--spool")
        .arg(&f.spool)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let get = |path: &str| -> Option<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .ok()?;
        let mut b = String::new();
        s.read_to_string(&mut b).ok()?;
        Some(b)
    };
    let mut metrics = String::new();
    for _ in 0..100 {
        if let Some(m) = get("/metrics") {
            if m.contains("treaty_agent_applied_snapshot_version 1") {
                metrics = m;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let health = get("/healthz").unwrap_or_default();
    let ready = get("/readyz").unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        metrics.contains("treaty_agent_commands_total{op=\"treaty.activate\"} 7"),
        "{metrics}"
    );
    assert!(metrics.contains("treaty_agent_pull_duration_seconds_count"));
    assert!(metrics.contains("treaty_agent_heartbeat_age_seconds"));
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let out = assert_cmd::Command::cargo_bin("treaty-agent")
        .unwrap()
        .args(["--once", "--metrics", "0.0.0.0:0", "--remote"])
        .arg(&f.remote)
        .arg("--state")
        .arg(f.g.path("../state-x"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `kill -9` at randomised points, 50 times in a row, while upstream keeps changing: no command
/// is lost, and a command is delivered again only when the kill landed during its delivery.
#[test]
fn kill_9_at_random_points_fifty_times_loses_nothing_and_repeats_only_in_flight_commands() {
    let f = Fleet::new();
    let log = f.g.path("../delivered.log");
    let hook = f.g.path("../slow-hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat > /dev/null\nsleep 0.03\necho $TREATY_IDEMPOTENCY_KEY >> {}\n",
            log.display()
        ),
    )
    .unwrap();
    let agent = || {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("treaty-agent"));
        c.args(["--once", "--exec", "sh", "--exec-arg"])
            .arg(&hook)
            .arg("--remote")
            .arg(&f.remote)
            .arg("--state")
            .arg(&f.state);
        c
    };
    let spawn = || agent().stderr(std::process::Stdio::null()).spawn().unwrap();
    // A cheap deterministic generator for the kill times.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut pushes = 0;
    let mut kills = 0;
    let applied_head = |f: &Fleet| -> bool {
        let head = f.g.git(&["rev-parse", "HEAD"]);
        std::fs::read(f.state.join("applied.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|a| a["commit"] == head.trim())
    };
    for i in 0..50 {
        if applied_head(&f) {
            f.change(1000 + i);
            f.push(false);
            pushes += 1;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = std::time::Duration::from_millis(seed % 150);
        let mut child = spawn();
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_none() {
            // SIGKILL: no destructor, no flush, no cleanup.
            child.kill().unwrap();
            kills += 1;
        }
        let _ = child.wait();
    }
    // Let it finish (its stderr kept, so a failure says why).
    let out = agent().output().unwrap();
    assert!(
        out.status.success(),
        "the run after the kills failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(applied_head(&f));
    let text = std::fs::read_to_string(&log).unwrap();
    let delivered: Vec<&str> = text.lines().collect();
    let mut unique = delivered.clone();
    unique.sort();
    unique.dedup();
    // Every command of every step arrived: the initial state plus one update per push.
    let genesis = f.g.git(&["rev-list", "--max-parents=0", "HEAD"]);
    let out =
        f.g.treaty()
            .args(["emit", "--to", genesis.trim()])
            .output()
            .unwrap();
    let first = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(
        unique.len(),
        first + pushes,
        "lost commands (kills: {kills}, pushes: {pushes})"
    );
    assert!(
        delivered.len() - unique.len() <= kills,
        "{} repeats for {kills} kills",
        delivered.len() - unique.len()
    );
    assert!(kills >= 10, "the kills must land ({kills})");
}

/// The network path: `git daemon` on loopback; the agent pulls over git://, and a daemon that
/// goes away is unreachable (exit 2), then back.
#[test]
fn the_agent_pulls_over_git_daemon_on_loopback() {
    let f = Fleet::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = f.remote.parent().unwrap().to_path_buf();
    // The daemon itself (not the `git` wrapper, whose kill would orphan it).
    let exec_path = String::from_utf8(
        std::process::Command::new("git")
            .arg("--exec-path")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let daemon = std::path::Path::new(exec_path.trim()).join("git-daemon");
    let start = || {
        std::process::Command::new(&daemon)
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(&base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let url = format!("git://127.0.0.1:{port}/remote.git");
    let run = |state: &str| {
        assert_cmd::Command::cargo_bin("treaty-agent")
            .unwrap()
            .args(["--once", "--remote", &url, "--state"])
            .arg(f.g.path(state))
            .output()
            .unwrap()
    };
    let out = run("../net-state");
    assert_eq!(out.status.code(), Some(2), "no daemon yet");
    let mut d = start();
    let mut ok = None;
    for _ in 0..50 {
        let out = run("../net-state");
        if out.status.success() {
            ok = Some(out);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = d.kill();
    let _ = d.wait();
    let out = ok.expect("the agent pulled over git://");
    assert_pulled_the_federation(&out);
}

/// A root rotated correctly (both thresholds) is followed; one signed by too few root keys is
/// refused, and the agent stays on what it applied.
#[test]
fn a_correctly_rotated_root_is_followed_and_an_incorrectly_rotated_one_refused() {
    let f = Fleet::new();
    assert_eq!(f.agent(&[]).0, 0);
    let before = f.g.git(&["rev-parse", "HEAD"]).trim().to_owned();
    // Incorrect: root v2 approved by one root key only.
    f.g.treaty()
        .args(["root", "rotate", "--expires", "2035-06-01T00:00:00Z"])
        .assert()
        .success();
    f.g.sign_root(&["root-2"]);
    f.g.commit("root v2, one signature");
    f.push(false);
    let (code, log) = f.agent(&[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("unapproved"), "{log}");
    // Correct: the second root signature, then a snapshot naming root v2.
    f.g.sign_root(&["root-3"]);
    f.g.commit("root v2 approved");
    f.resnapshot();
    f.push(false);
    let (code, log) = f.agent(&[]);
    assert_eq!(code, 0, "{log}");
    let applied: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.state.join("applied.json")).unwrap()).unwrap();
    assert_eq!(applied["root_version"], 2);
    assert_ne!(applied["commit"], before);
}

#[test]
fn a_config_file_carries_the_options_and_flags_win() {
    let f = Fleet::new();
    let cfg = f.g.path("../agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "remote = {:?}\nstate = {:?}\nspool = {:?}\nmax-heartbeat-age = \"26h\"\n",
            f.remote.display().to_string(),
            f.state.display().to_string(),
            f.spool.display().to_string()
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        assert_cmd::Command::cargo_bin("treaty-agent")
            .unwrap()
            .args(["--once", "--config"])
            .arg(&cfg)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.spooled() >= 18);
    // A flag overrides the file: another state directory starts from scratch, on stdout.
    let other = f.g.path("../state-flag");
    let out = run(&[
        "--state",
        other.to_str().unwrap(),
        "--spool",
        f.g.path("../spool2").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(other.join("applied.json").exists());
    // Unknown keys and missing required options cannot be judged.
    std::fs::write(&cfg, "remot = \"x\"\n").unwrap();
    assert_eq!(run(&[]).status.code(), Some(2));
    std::fs::write(&cfg, "").unwrap();
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("required"));
}

/// Smart HTTP: the real `git http-backend` behind a loopback server. Plain http:// needs no
/// TLS build: what arrives is verified against the trust anchor whatever the transport.
#[test]
fn the_agent_pulls_over_smart_http_on_loopback() {
    let f = Fleet::new();
    let srv = crate::githttp::GitHttp::start(f.remote.parent().unwrap(), None);
    let url = format!("{}/remote.git", srv.url);
    let run = || {
        assert_cmd::Command::cargo_bin("treaty-agent")
            .unwrap()
            .args(["--once", "--remote", &url, "--state"])
            .arg(f.g.path("../http-state"))
            .output()
            .unwrap()
    };
    let out = run();
    assert_pulled_the_federation(&out);
    f.change(77);
    f.push(false);
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmds: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cmds.len(), 1, "{cmds:#?}");
    assert_eq!(cmds[0]["op"], "treaty.update");
    assert_eq!(cmds[0]["source"]["repository"], url.as_str());
}

/// Without the `https` feature an https:// remote is refused with what to do about it.
#[cfg(not(feature = "https"))]
#[test]
fn an_https_remote_without_the_https_build_says_how_to_get_one() {
    let f = Fleet::new();
    let out = assert_cmd::Command::cargo_bin("treaty-agent")
        .unwrap()
        .args([
            "--once",
            "--remote",
            "https://127.0.0.1:1/gov.git",
            "--state",
        ])
        .arg(f.g.path("../tls-state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("--features https"), "{log}");
}

/// Smart HTTPS (the `https` feature): the server's certificate is checked — a CA the agent
/// does not trust is refused (exit 2, nothing applied); trusted through `SSL_CERT_FILE`, the
/// same server serves.
#[cfg(feature = "https")]
#[test]
fn over_https_the_server_certificate_is_checked() {
    let f = Fleet::new();
    let (ca, cert, key) = crate::githttp::tls_files(&f.g.path("../tls"));
    let srv = crate::githttp::GitHttp::start(f.remote.parent().unwrap(), Some((&cert, &key)));
    let url = format!("{}/remote.git", srv.url);
    let state = f.g.path("../tls-state");
    let run = |ca_file: &Path| {
        assert_cmd::Command::cargo_bin("treaty-agent")
            .unwrap()
            .env("SSL_CERT_FILE", ca_file)
            .env_remove("SSL_CERT_DIR")
            .args(["--once", "--remote", &url, "--state"])
            .arg(&state)
            .output()
            .unwrap()
    };
    // An empty trust store: the handshake fails, nothing is applied.
    let empty = f.g.path("../tls/empty.pem");
    std::fs::write(&empty, "").unwrap();
    let out = run(&empty);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(log.contains("certificate"), "{log}");
    assert!(!state.join("applied.json").exists());
    let out = run(&ca);
    assert_pulled_the_federation(&out);
}

/// Logs are `tracing` events on stderr: JSON lines for collectors, with the refusal's reason
/// as a field; nothing but commands ever goes to stdout.
#[test]
fn logs_are_json_lines_on_stderr_with_the_reason_as_a_field() {
    let f = Fleet::new();
    let out = assert_cmd::Command::cargo_bin("treaty-agent")
        .unwrap()
        .args(["--once", "--log-format", "json", "--remote"])
        .arg(f.g.path("../no-such-remote.git"))
        .arg("--state")
        .arg(&f.state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let refusal = lines
        .iter()
        .find(|l| l["reason"] == "remote-unreachable")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(refusal["level"], "ERROR");
    assert!(refusal["message"]
        .as_str()
        .unwrap()
        .contains("no repository at this path"));
    // The same pull, applied, in text: the commit and the count are fields too.
    let (code, log) = f.agent(&["--log-level", "info"]);
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("INFO") && log.contains("commands=") && log.contains("commit="),
        "{log}"
    );
}

/// SSH (the `ssh` feature) against a real `sshd` on loopback: the server's host key must be in
/// `~/.ssh/known_hosts` — an unknown host is refused (exit 2, nothing applied) — and the agent
/// authenticates with `--ssh-key`.
#[cfg(feature = "ssh")]
#[test]
fn over_ssh_the_host_key_is_checked_and_the_agent_authenticates_with_its_key() {
    let sshd = Path::new("/usr/sbin/sshd");
    assert!(
        sshd.exists(),
        "this test needs openssh-server (.ci/run installs it)"
    );
    let f = Fleet::new();
    let dir = f.g.path("../ssh");
    std::fs::create_dir_all(dir.join("home/.ssh")).unwrap();
    let keygen = |name: &str| {
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join(name))
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap()
    };
    let host_pub = keygen("host_ed25519");
    let user_pub = keygen("id_ed25519");
    std::fs::write(dir.join("authorized_keys"), &user_pub).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile none\nAuthorizedKeysFile {auth}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nLogLevel ERROR\n",
            host = dir.join("host_ed25519").display(),
            auth = dir.join("authorized_keys").display(),
        ),
    )
    .unwrap();
    // Privilege separation needs this directory (CI runs as root).
    let _ = std::fs::create_dir_all("/run/sshd");
    let mut server = std::process::Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let user = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let url = format!(
        "ssh://{}@127.0.0.1:{port}{}",
        user.trim(),
        f.remote.display()
    );
    let state = f.g.path("../ssh-state");
    let run = || {
        assert_cmd::Command::cargo_bin("treaty-agent")
            .unwrap()
            .env("HOME", dir.join("home"))
            .env_remove("SSH_AUTH_SOCK")
            .args(["--once", "--remote", &url, "--ssh-key"])
            .arg(dir.join("id_ed25519"))
            .arg("--state")
            .arg(&state)
            .output()
            .unwrap()
    };
    // No known_hosts entry: refused before anything is fetched.
    let unknown = run();
    // A known_hosts entry for another key: refused too.
    let mut parts = host_pub.split_whitespace();
    let (kind, _) = (parts.next().unwrap(), parts.next().unwrap());
    let other = keygen("other_ed25519");
    let other_b64 = other.split_whitespace().nth(1).unwrap();
    std::fs::write(
        dir.join("home/.ssh/known_hosts"),
        format!("[127.0.0.1]:{port} {kind} {other_b64}\n"),
    )
    .unwrap();
    let changed = run();
    // The right host key: pulled.
    let b64 = host_pub.split_whitespace().nth(1).unwrap();
    std::fs::write(
        dir.join("home/.ssh/known_hosts"),
        format!("[127.0.0.1]:{port} {kind} {b64}\n"),
    )
    .unwrap();
    let ok = run();
    let _ = server.kill();
    let _ = server.wait();
    for (what, out) in [("unknown host", &unknown), ("changed host key", &changed)] {
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{what}: nothing delivered");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains("hostkey"), "{what}: {log}");
    }
    assert_pulled_the_federation(&ok);
}

/// A mirror whose objects are damaged on disk cannot be judged: the agent stops with a storage
/// refusal (exit 2) and delivers nothing, whichever thread met the damage first.
#[test]
fn a_damaged_object_in_the_mirror_is_a_storage_refusal_with_nothing_delivered() {
    let f = Fleet::new();
    assert_eq!(f.agent(&[]).0, 0);
    let before = f.spooled();
    f.change(91);
    f.push(false);
    let mirror = f.state.join("mirror.git");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&mirror)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // Fetch the new commit into the mirror the way the agent does, then unpack every pack into
    // loose objects so one of them can be damaged.
    git(&[
        "fetch",
        "-q",
        f.remote.to_str().unwrap(),
        "+refs/heads/main:refs/remotes/origin/main",
    ]);
    let pack_dir = mirror.join("objects/pack");
    for e in std::fs::read_dir(&pack_dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pack") {
            let moved = f.g.path("../moved.pack");
            std::fs::rename(&p, &moved).unwrap();
            std::fs::remove_file(p.with_extension("idx")).unwrap();
            let st = std::process::Command::new("git")
                .arg("--git-dir")
                .arg(&mirror)
                .arg("unpack-objects")
                .arg("-q")
                .stdin(std::fs::File::open(&moved).unwrap())
                .status()
                .unwrap();
            assert!(st.success());
        }
    }
    let blob = git(&["rev-parse", &format!("refs/remotes/origin/main:{AKASH}")]);
    let loose = mirror.join("objects").join(&blob[..2]).join(&blob[2..]);
    let mut perms = std::fs::metadata(&loose).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&loose, perms).unwrap();
    std::fs::write(&loose, b"not a zlib stream").unwrap();
    let (code, log) = f.agent(&[]);
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("storage") && log.contains("could not read"),
        "{log}"
    );
    assert_eq!(f.spooled(), before, "nothing delivered");
}
