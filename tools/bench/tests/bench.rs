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
