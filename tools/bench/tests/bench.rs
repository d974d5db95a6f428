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
