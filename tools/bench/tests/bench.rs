//! The benchmarks as a tool: `treaty-bench` makes an honest repository and reports figures beside
//! their floors; the synthetic no-op history is a smoke test, never a false-positive rate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

#[test]
fn bench_gen_makes_an_approved_repository_and_bench_verify_reports_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bench");
    assert_cmd::Command::cargo_bin("treaty-bench")
        .unwrap()
        .args(["gen", "20", "--out", dir.to_str().unwrap()])
        .assert()
        .success();
    // The generated repository is approved (judged by the library, as `treaty verify` does).
    let repo = treaty::source::Repo::discover(&dir).unwrap();
    let (tree, parent) = repo.revision(repo.resolve("HEAD").unwrap(), false).unwrap();
    let opts = treaty::verify::Options {
        anchor: treaty::trust::Anchor::Repository,
        at: treaty::time::now(),
        exhaustive: false,
    };
    assert!(treaty::verify::verify_tree(&tree, parent.as_ref(), &opts).approved);
    let out = assert_cmd::Command::cargo_bin("treaty-bench")
        .unwrap()
        .args(["verify", dir.to_str().unwrap(), "--format", "json"])
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(r["approved"], true);
    assert_eq!(r["signatures_checked"], 20 * 6);
    assert_eq!(r["floor_failed"], 0);
    assert!(r["ratio"].as_f64().unwrap() > 0.0);
}

/// The synthetic no-op history is a smoke test (its templates were written with the
/// classifier): it must run and say so, never claim a false-positive rate.
#[test]
fn the_synthetic_no_op_history_is_a_smoke_test_not_a_rate() {
    let out = assert_cmd::Command::cargo_bin("treaty-bench")
        .unwrap()
        .args(["noop", "--synthetic", "60"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("synthetic smoke test (60 commits"), "{text}");
    assert!(!text.contains("% false positives"), "{text}");
}

/// What a repository shows of itself: every ref, HEAD, the work tree's status, and the files
/// under `.git/` that treaty or a benchmark could write (verdict cache, keys).
fn fingerprint(dir: &std::path::Path) -> String {
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    let mut listing = Vec::new();
    for sub in ["treaty", "bench-keys"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(".git").join(sub)) {
            for e in rd {
                listing.push(format!(
                    "{sub}/{}",
                    e.unwrap().file_name().to_string_lossy()
                ));
            }
        }
    }
    listing.sort();
    format!(
        "{}\n{}\n{}\n{}",
        git(&["for-each-ref"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
        git(&["status", "--porcelain", "--ignored"]),
        listing.join("\n")
    )
}

/// A benchmark never checks out, commits or writes keys or caches into the repository it was
/// pointed at (issue 15): `gate` works on a clone, `verify` keeps its verdict cache in scratch.
/// And the gate figure is a process against a process, each with its floor printed.
#[test]
fn benchmarks_leave_the_repository_they_measure_as_they_found_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bench");
    assert_cmd::Command::cargo_bin("treaty-bench")
        .unwrap()
        .args(["gen", "12", "--out", dir.to_str().unwrap()])
        .assert()
        .success();
    let before = fingerprint(&dir);
    assert!(before.contains("refs/heads/main"), "{before}");
    let out = assert_cmd::Command::cargo_bin("treaty-bench")
        .unwrap()
        .args(["gate", dir.to_str().unwrap(), "--runs", "5"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    // The floors grep for the marker; spelled in pieces here so this test file is not itself
    // a marker in a protected path.
    let marker = ["temp", "stub"].join(".");
    for want in [
        "treaty gate --target main:".to_owned(),
        format!("floor: git diff -U0 | grep -i {marker}:"),
        "treaty gate --target production:".to_owned(),
        format!("floor: git grep -i {marker} HEAD:"),
        "gate passed:             true".to_owned(),
    ] {
        assert!(text.contains(&want), "{want:?} missing from:\n{text}");
    }
    assert!(text.contains("(min ") && text.contains("5 runs"), "{text}");
    assert_eq!(
        fingerprint(&dir),
        before,
        "bench gate changed the repository"
    );
    assert_cmd::Command::cargo_bin("treaty-bench")
        .unwrap()
        .args(["verify", dir.to_str().unwrap()])
        .assert()
        .success();
    // `verify` reads history like `treaty verify` (whose history index under .git/treaty is
    // the product's own cache); the benchmark adds nothing of its own there.
    let after = fingerprint(&dir);
    assert!(
        !after.contains("verdicts-v2.json"),
        "bench verify wrote its verdict cache into the repository:\n{after}"
    );
}

/// `treaty-bench law` measures on a fresh demo federation: the mix is the one it meant to make
/// (allowed, denied, replayed), every series has its orders, and over HTTP (when `wrk` is
/// installed) each level reports a rate.
#[test]
fn the_law_benchmark_decides_its_mix_and_reports_every_series() {
    let tmp = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("treaty-bench")
        .unwrap()
        .args([
            "law",
            "--orders",
            "60",
            "--wrk-seconds",
            "1",
            "--format",
            "json",
            "--work",
        ])
        .arg(tmp.path().join("law"))
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(r["orders"], 60);
    let n = |k: &str| r[k].as_u64().unwrap();
    assert_eq!(n("allowed") + n("denied") + n("refused"), 60, "{r}");
    // Every 10th order asks a region no treaty allows (6 of 60), every 20th re-uses a nonce (3,
    // all of them 10th ones too: refused as replays before their region is judged).
    assert!(
        n("allowed") > 0 && n("denied") == 3 && n("refused") == 3,
        "{r}"
    );
    for s in [
        "engine",
        "floor_verify_commit",
        "floor_verify",
        "rego_alone",
    ] {
        assert_eq!(r[s]["n"], 60, "{s}: {r}");
        assert!(r[s]["p99_us"].as_f64().unwrap() > 0.0, "{s}");
    }
    let wrk = std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok();
    if wrk {
        let levels = r["http"].as_array().unwrap();
        assert_eq!(levels.len(), 4, "{r}");
        assert!(
            levels
                .iter()
                .all(|l| l["requests_per_second"].as_f64().unwrap() > 0.0),
            "{r}"
        );
        // The server decided the orders (a malformed body would be refused, not decided).
        let mix = r["http_server_mix"].as_str().unwrap();
        let count = |what: &str| -> u64 {
            mix.split(", ")
                .find_map(|p| p.strip_prefix(what)?.trim().split(' ').next()?.parse().ok())
                .unwrap()
        };
        assert!(count("allowed ") > 0, "{mix}");
        assert!(count("denied ") > 0, "{mix}");
    } else {
        assert!(r["http_note"].as_str().unwrap().contains("not installed"));
    }
}

/// The war game as CI can afford it: a day in under three minutes (four debug-built
/// agents, one Redis), every scripted event, and the effect each must have on the answers — a
/// test of the simulator and of the fleet under it, never of a speed. The invariants (no nonce
/// allowed twice, the revocation in force at every agent and nothing of the revoked treaty
/// allowed after) are the exit status.
#[cfg(feature = "sim-clock")]
#[test]
fn the_war_game_plays_a_day_and_each_event_shows_in_its_phase() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("war-game");
    let out = assert_cmd::Command::cargo_bin("treaty-bench")
        .unwrap()
        .args([
            "fleet",
            "--work",
            work.to_str().unwrap(),
            "--format",
            "json",
        ])
        .args(["--rate", "600", "--orders", "8000", "--agents", "4"])
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    let logs = || {
        (0..4)
            .map(|i| {
                std::fs::read_to_string(work.join(format!("agent-{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["nonces_allowed_twice"], 0, "{r:#}");
    assert_eq!(r["allowed_after_revocation_applied"], 0, "{r:#}");
    let phases = r["phases"].as_array().unwrap();
    let after: Vec<&str> = phases
        .iter()
        .map(|p| p["after"].as_str().unwrap())
        .collect();
    assert_eq!(
        after,
        [
            "start",
            "ProviderOutage",
            "ProviderBack",
            "SurgeStart",
            "SurgeEnd",
            "AgentKilled",
            "AgentRestarted",
            "RedisRestarted",
            "TreatyRevoked"
        ]
    );
    let phase = |name: &str| phases.iter().find(|p| p["after"] == name).unwrap();
    let count = |p: &serde_json::Value, field: &str, prefix: &str| -> u64 {
        p[field]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c[0].as_str().unwrap().starts_with(prefix))
            .map(|c| c[1].as_u64().unwrap())
            .sum()
    };
    let n = |p: &serde_json::Value, f: &str| p[f].as_u64().unwrap();
    // Before any event: orders allowed, nothing of what the events cause.
    let start = phase("start");
    assert!(n(start, "allowed") > 100, "{start:#}");
    for code in [
        "provider-unhealthy",
        "concurrent-jobs",
        "treaty-inactive",
        "state-too-new",
    ] {
        assert_eq!(count(start, "codes", code), 0, "{code}: {start:#}");
    }
    // The outage: the provider's breaker trips (in the outage or in the hour after it, which
    // still holds the unfilled answers), and orders fail over.
    let unhealthy = count(
        phase("ProviderOutage"),
        "codes",
        "provider-unhealthy AURORA-IONET-001",
    ) + count(
        phase("ProviderBack"),
        "codes",
        "provider-unhealthy AURORA-IONET-001",
    );
    assert!(unhealthy > 0, "{r:#}");
    assert!(
        phase("ProviderOutage")["fill_rate"].as_f64().unwrap()
            < start["fill_rate"].as_f64().unwrap(),
        "{r:#}"
    );
    // The surge: quotas bite, and failovers are offered and taken (in the surge's hour, or
    // in the next phase when the debug-built fleet could not keep pace with it).
    let (surge, after_surge) = (phase("SurgeStart"), phase("SurgeEnd"));
    let both = |f: &dyn Fn(&serde_json::Value) -> u64| f(surge) + f(after_surge);
    assert!(
        both(&|p| count(p, "codes", "concurrent-jobs-over-quota")
            + count(p, "codes", "gpu-hours-over-daily-quota"))
            > 0,
        "{surge:#}\n{after_surge:#}"
    );
    assert!(
        both(&|p| n(p, "failovers_offered")) > 0 && both(&|p| n(p, "failover_allowed")) > 0,
        "{surge:#}\n{after_surge:#}"
    );
    // The killed agent's share goes to the others: orders are still decided.
    let killed = phase("AgentKilled");
    assert!(n(killed, "allowed") > 0, "{killed:#}");
    // The Redis restart: answers 503 while it is down, or orders signed before the new birth
    // refused; then decisions resume.
    let redis = phase("RedisRestarted");
    assert!(
        count(redis, "unavailable_codes", "store-unavailable")
            + count(redis, "codes", "state-too-new")
            > 0,
        "{redis:#}"
    );
    assert!(n(redis, "allowed") > 100, "{redis:#}");
    // The revocation: the treaty's orders refused as inactive.
    let revoked = phase("TreatyRevoked");
    assert!(
        count(revoked, "codes", "treaty-inactive") > 0,
        "{revoked:#}"
    );
    // Replays are refused; resubmissions get the recorded answer; every answered decision and
    // applied ACK has its receipt, all under a signed checkpoint.
    let total = &r["total"];
    assert!(
        n(total, "replays_sent") > 0 && n(total, "replays_refused") > 0,
        "{total:#}"
    );
    assert!(n(total, "repeats_answered") > 0, "{total:#}");
    assert_eq!(r["receipts_written"], r["receipts_checkpointed"], "{r:#}");
    let answered = n(total, "receipted_answers") + n(&r, "probes");
    let written = n(&r, "receipts_written");
    // At least one receipt per answered decision and applied ACK; more only for answers lost
    // on the wire (the killed agent's requests in flight, a timeout): at most the senders' and
    // providers' connections.
    assert!(
        written >= answered && written <= answered + 64,
        "{written} for {answered}: {r:#}"
    );
    assert_eq!(r["agent_restarted_ready"], true, "{r:#}");
    assert_eq!(r["revocation_applied"], true, "{r:#}");
}
