//! The lifecycle commands drive a repository through onboarding, a root rotation, a compromise
//! revocation and a renewal, with `treaty verify` correct at every step.

use crate::common::*;
use predicates::prelude::*;

const TREATIES: [&str; 7] = [
    "AKASH", "IONET", "RENDER", "FLUX", "AETHIR", "VASTAI", "SALAD",
];

fn provider(t: &str) -> String {
    format!("{}-1", t.to_lowercase())
}

/// Re-approves every council-governed file with the given council members (and each provider).
fn reapprove_council_files(g: &Gov, council: &[&str]) {
    for t in TREATIES {
        let p = format!("treaties/AURORA-{t}-001.json");
        let prov = provider(t);
        let mut ids: Vec<&str> = council.to_vec();
        ids.push(&prov);
        g.sign(&p, &ids);
    }
    g.sign("policies/default.json", council);
}

fn ok(g: &Gov, args: &[&str]) -> String {
    let out = g.treaty().args(args).assert().success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

#[test]
fn onboarding_rotation_compromise_and_renewal_end_to_end() {
    let g = Gov::demo();
    assert_approved(&g);

    // 1. Onboard a signer into the council.
    ok(
        &g,
        &[
            "key",
            "gen",
            "--id",
            "council-4",
            "--out",
            "demo-keys",
            "--insecure-unencrypted",
        ],
    );
    let out = ok(
        &g,
        &[
            "group",
            "add-member",
            "council",
            "--member",
            "demo-keys/council-4.pub.json",
        ],
    );
    assert!(out.contains("wrote root version 2"), "{out}");
    assert!(out.contains("signed again"), "{out}");
    // Until the root group approves, nothing is approved at the work tree.
    g.treaty().args(["verify", "--worktree"]).assert().code(1);
    g.treaty()
        .args(["root", "sign", "--key", "demo-keys/root-1.key"])
        .assert()
        .success();
    g.treaty()
        .args(["root", "sign", "--key", "demo-keys/root-2.key"])
        .assert()
        .success();
    // The council's group id changed: its files must be approved again, and status says so.
    let (code, r) = g.verify(&["--worktree"]);
    assert_eq!(code, 1);
    assert!(has(
        &r,
        "statement-groups-mismatch",
        &format!("{AKASH}.sig")
    ));
    assert_eq!(file(&r, "gates/gates.toml")["approved"], true);
    reapprove_council_files(&g, &["council-1", "council-4"]);
    g.commit("onboard council-4");
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
    let council = file(&r, AKASH)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "council")
        .unwrap()
        .clone();
    assert_eq!(
        council["signed"],
        serde_json::json!(["council-1", "council-4"])
    );

    // 2. Rotate the root (new version, later expiry).
    let out = ok(&g, &["root", "rotate", "--expires", "2035-06-01T00:00:00Z"]);
    assert!(out.contains("wrote root version 3"), "{out}");
    g.treaty().args(["verify", "--worktree"]).assert().code(1);
    g.treaty()
        .args(["root", "sign", "--key", "demo-keys/root-2.key"])
        .assert()
        .success();
    g.treaty()
        .args(["root", "sign", "--key", "demo-keys/root-3.key"])
        .assert()
        .success();
    g.commit("root v3");
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
    assert_eq!(r["trust"]["root_version"], 3);
    // A verifier that pinned version 1 follows the chain 1 → 2 → 3.
    std::fs::write(g.path("../pin.json"), g.read("keys/roots/1.json")).unwrap();
    assert_eq!(g.verify(&["--trust", "../pin.json"]).0, 0);

    // 3. council-4's key is compromised: revoke it, and status names what fell below threshold.
    let kid = g.key("council-4").classical_public().key_id();
    let out = ok(&g, &["key", "revoke", &kid, "--reason", "compromised"]);
    assert!(out.contains("approvals now below threshold"), "{out}");
    assert!(out.contains(&format!("{AKASH}: council has 1/2")), "{out}");
    g.treaty()
        .args(["root", "sign", "--key", "demo-keys/root-1.key"])
        .assert()
        .success();
    g.treaty()
        .args(["root", "sign", "--key", "demo-keys/root-3.key"])
        .assert()
        .success();
    g.commit("revoke council-4 (compromised)");
    let r = assert_rejected(&g, &[], "threshold-not-met", AKASH);
    assert!(has(&r, "revoked-key", &format!("{AKASH}.sig")));
    g.treaty()
        .args(["sign", AKASH, "--key", "demo-keys/council-4.key"])
        .assert()
        .code(1);
    for t in TREATIES {
        g.sign(&format!("treaties/AURORA-{t}-001.json"), &["council-2"]);
    }
    g.sign("policies/default.json", &["council-2"]);
    g.commit("council-2 restores the thresholds");
    assert_approved(&g);

    // 4. Renewal: everything expires within 11 years; renew lists it, then renews the root.
    let out = g
        .treaty()
        .args(["renew", "--within-days", "4100"])
        .assert()
        .code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("keys/root.json expires 2035-06-01T00:00:00Z"),
        "{text}"
    );
    assert!(text.contains(&format!("{AKASH} expires")), "{text}");
    assert!(text.contains("needs 2 of council"), "{text}");
    let out = g
        .treaty()
        .args([
            "renew",
            "--within-days",
            "4100",
            "--rotate-root",
            "--expires",
            "2040-01-01T00:00:00Z",
        ])
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("wrote root version 5"));
    g.treaty()
        .args(["root", "sign", "--key", "demo-keys/root-1.key"])
        .assert()
        .success();
    g.treaty()
        .args(["root", "sign", "--key", "demo-keys/root-2.key"])
        .assert()
        .success();
    g.treaty()
        .args([
            "sign",
            AKASH,
            "--expires",
            "2040-01-01T00:00:00Z",
            "--restart",
            "--key",
            "demo-keys/council-1.key",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("dropped"));
    g.sign(AKASH, &["council-2", "akash-1"]);
    g.commit("renew root and the akash approval");
    assert_approved(&g);
    // After the old approvals' expiry, the renewed treaty still stands; the others do not.
    let (code, r) = g.verify(&["--at", "2037-01-01T00:00:00Z"]);
    assert_eq!(code, 1);
    assert_eq!(file(&r, AKASH)["approved"], true, "{:#?}", file(&r, AKASH));
    assert!(has(&r, "approval-expired", &format!("{IONET}.sig")));
}

#[test]
fn group_changes_that_would_break_trust_are_refused() {
    let g = Gov::demo();
    // More required signatures than members.
    g.treaty()
        .args(["group", "set-threshold", "council", "4"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("threshold 4 but only 3 members"));
    // One person in both groups a treaty delegation requires.
    let council1 =
        serde_json::to_vec(&treaty::scaffold::member_entry(&g.key("council-1"))).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&council1).unwrap();
    m["id"] = "akash-9".into();
    g.write("../dual.pub.json", serde_json::to_vec(&m).unwrap());
    g.treaty()
        .args([
            "group",
            "add-member",
            "akash",
            "--member",
            "../dual.pub.json",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("delegation-conflict"));
    // A delegation to a group that does not exist.
    g.treaty()
        .args([
            "delegate",
            "treaties/AURORA-NEW-*",
            "--groups",
            "council,nobody",
        ])
        .assert()
        .code(1);
    // Nothing was written by the refusals.
    assert_eq!(g.git(&["status", "--porcelain"]), "");
}

#[test]
fn delegate_adds_a_first_match_delegation_that_verify_honours() {
    let g = Gov::demo();
    ok(
        &g,
        &[
            "delegate",
            "treaties/AURORA-AKASH-9*",
            "--groups",
            "council",
        ],
    );
    g.sign("keys/root.json", &["root-1", "root-2"]);
    let mut t = g.json(AKASH);
    t["treaty_id"] = "AURORA-AKASH-901".into();
    g.write_json("treaties/AURORA-AKASH-901.json", &t);
    g.sign(
        "treaties/AURORA-AKASH-901.json",
        &["council-1", "council-3"],
    );
    g.commit("council-only pilot treaties");
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
    assert_eq!(
        file(&r, "treaties/AURORA-AKASH-901.json")["governed_by"],
        "delegation treaties-aurora-akash-9"
    );
}
