//! The verdict cache under .git/treaty/ never serves a verdict whose inputs changed.

use crate::common::*;

#[test]
fn a_cached_run_reports_exactly_what_a_fresh_run_does() {
    let g = Gov::demo();
    let (c1, first) = g.verify(&[]);
    assert!(
        g.path(".git/treaty/verdicts-v2.json").exists(),
        "the first run fills the cache"
    );
    let (c2, second) = g.verify(&[]);
    let (c3, uncached) = g.verify(&["--no-cache"]);
    assert_eq!((c1, c2, c3), (0, 0, 0));
    let strip = |mut v: serde_json::Value| {
        v["judged_at"] = serde_json::Value::Null;
        v
    };
    assert_eq!(strip(first.clone()), strip(second));
    assert_eq!(strip(first), strip(uncached));
}

#[test]
fn tampering_after_a_cached_approval_is_still_rejected() {
    let g = Gov::demo();
    assert_approved(&g);
    let mut t = g.json(AKASH);
    t["quotas"]["gpu_hours_per_day"] = 1.into();
    g.write_json(AKASH, &t);
    g.commit("tamper");
    assert_rejected(&g, &[], "digest-mismatch", AKASH);
}

#[test]
fn a_trust_change_invalidates_cached_verdicts() {
    let g = Gov::demo();
    assert_approved(&g);
    let kid = g.key("council-1").classical_public().key_id();
    g.treaty()
        .args(["key", "revoke", &kid, "--reason", "retired"])
        .assert()
        .success();
    g.sign("keys/root.json", &["root-1", "root-2"]);
    g.commit("retire council-1");
    assert_rejected(&g, &[], "threshold-not-met", AKASH);
}

#[test]
fn a_cached_verdict_is_not_reused_across_an_approval_expiry() {
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["version"] = 2.into();
    g.write_json(AKASH, &t);
    for id in ["council-1", "council-2", "akash-1"] {
        g.treaty()
            .args([
                "sign",
                AKASH,
                "--expires",
                "2028-01-01T00:00:00Z",
                "--key",
                &format!("demo-keys/{id}.key"),
            ])
            .assert()
            .success();
    }
    g.commit("short approval");
    assert_eq!(g.verify(&["--at", "2027-01-01T00:00:00Z"]).0, 0);
    assert_rejected(
        &g,
        &["--at", "2028-06-01T00:00:00Z"],
        "approval-expired",
        &format!("{AKASH}.sig"),
    );
    // And back: a verdict made after the expiry is not served for an earlier instant either.
    assert_eq!(g.verify(&["--at", "2027-06-01T00:00:00Z"]).0, 0);
}

#[test]
fn a_corrupt_cache_file_is_ignored() {
    let g = Gov::demo();
    std::fs::create_dir_all(g.path(".git/treaty")).unwrap();
    std::fs::write(g.path(".git/treaty/verdicts-v2.json"), b"{not json").unwrap();
    assert_approved(&g);
}

/// The cache is actually used: a verdict planted in it for unchanged inputs is what the next
/// run reports (a cache that never returned anything would pass every other test here). The
/// planted verdict is a rejection, so a hit shows as exit 1 — and `--no-cache` is not fooled.
#[test]
fn a_second_run_is_served_from_the_cache() {
    let g = Gov::demo();
    assert_eq!(g.verify(&[]).0, 0);
    let path = g.path(".git/treaty/verdicts-v2.json");
    let mut stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let shapes = stored["shapes"].as_array_mut().unwrap();
    assert!(!shapes.is_empty(), "the first run stored nothing");
    for s in shapes.iter_mut() {
        s["verdict"]["approved"] = false.into();
        s["verdict"]["findings"] = serde_json::json!([{
            "code": "threshold-not-met", "severity": "error", "message": "planted in the cache"
        }]);
    }
    std::fs::write(&path, serde_json::to_vec(&stored).unwrap()).unwrap();
    let (code, report) = g.verify(&[]);
    assert_eq!(code, 1, "the cache was not read: {report}");
    assert!(
        report.to_string().contains("planted in the cache"),
        "{report}"
    );
    assert_eq!(g.verify(&["--no-cache"]).0, 0);
}
