//! `treaty gate` on pull-request-shaped histories made with the real git CLI.

use crate::common::*;
use predicates::prelude::*;

/// Starts a pull-request branch `pr` from main.
fn branch(g: &Gov) {
    g.git(&["checkout", "-q", "-b", "pr"]);
}

fn gate(g: &Gov, extra: &[&str]) -> (i32, serde_json::Value) {
    gate_json(g, extra)
}

fn status<'a>(r: &'a serde_json::Value, id: &str) -> &'a str {
    r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap()["status"]
        .as_str()
        .unwrap()
}

fn gate_codes(r: &serde_json::Value, id: &str) -> Vec<String> {
    r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

fn bump(g: &Gov, v: u64) {
    let mut t = g.json(AKASH);
    t["version"] = v.into();
    t["quotas"]["concurrent_jobs"] = (60 + v).into();
    g.write_json(AKASH, &t);
}

/// Changes the gate configuration on main, approved by the root group.
fn configure(g: &Gov, edit: impl Fn(String) -> String) {
    let cfg = String::from_utf8(g.read("gates/gates.toml")).unwrap();
    let v: u64 = cfg
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .unwrap()
        .parse()
        .unwrap();
    let cfg = edit(cfg).replace(&format!("version = {v}"), &format!("version = {}", v + 1));
    g.write("gates/gates.toml", cfg);
    g.sign("gates/gates.toml", &["root-1", "root-2"]);
    g.commit("gate configuration");
}

#[test]
fn an_approved_change_passes_every_gate() {
    let g = Gov::demo();
    branch(&g);
    bump(&g, 2);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("akash v2");
    let (code, r) = gate(&g, &[]);
    assert_eq!(code, 0, "{r:#}");
    for id in [
        "schema",
        "approval",
        "version",
        "temp-stub",
        "no-op",
        "expiry",
    ] {
        assert_eq!(status(&r, id), "pass", "{id}: {r:#}");
    }
}

#[test]
fn collecting_signatures_is_pending_and_allow_pending_passes() {
    let g = Gov::demo();
    branch(&g);
    bump(&g, 2);
    g.sign(AKASH, &["council-1"]);
    g.commit("akash v2, one signature");
    let (code, r) = gate(&g, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "approval"), "pending");
    assert!(r
        .to_string()
        .contains("may still sign: council-2, council-3"));
    assert_eq!(gate(&g, &["--allow-pending"]).0, 0);
}

#[test]
fn schema_version_and_approval_failures_are_each_reported() {
    let g = Gov::demo();
    branch(&g);
    let mut t = g.json(AKASH);
    t["min_reputation"] = 3.into();
    g.write_json(AKASH, &t);
    g.commit("invalid, unsigned, same version");
    let (code, r) = gate(&g, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "schema"), "fail");
    assert_eq!(status(&r, "version"), "fail");
    assert!(gate_codes(&r, "version").contains(&"version-equivocation".to_owned()));
    assert_eq!(status(&r, "approval"), "fail");
    assert!(gate_codes(&r, "approval").contains(&"digest-mismatch".to_owned()));
}

#[test]
fn rollback_in_a_pull_request_fails_the_version_gate() {
    let g = Gov::demo();
    let v1 = (g.read(AKASH), g.read(&format!("{AKASH}.sig")));
    bump(&g, 2);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("v2 on main");
    branch(&g);
    g.write(AKASH, &v1.0);
    g.write(&format!("{AKASH}.sig"), &v1.1);
    g.commit("restore v1");
    let (code, r) = gate(&g, &[]);
    assert_eq!(code, 1);
    assert!(gate_codes(&r, "version").contains(&"version-rollback".to_owned()));
}

#[test]
fn deleting_a_governed_file_fails() {
    let g = Gov::demo();
    branch(&g);
    g.git(&["rm", "-q", AKASH, &format!("{AKASH}.sig")]);
    g.commit("delete a treaty");
    let (code, r) = gate(&g, &[]);
    assert_eq!(code, 1);
    assert!(gate_codes(&r, "approval").contains(&"governed-file-deleted".to_owned()));
}

#[test]
fn temp_stub_markers_and_their_evasions_fail_in_protected_paths_only() {
    for (i, marker) in [
        "TEMP-STUB",
        "temp_stub",
        "TEMP STUB",
        "TempStub",
        "ＴＥＭＰ－ＳＴＵＢ",
        "TEMP\u{2011}STUB",
        "TEMP\u{200B}STUB",
    ]
    .iter()
    .enumerate()
    {
        let g = Gov::demo();
        branch(&g);
        g.write(
            "src/lib.rs",
            format!("pub fn f() -> u32 {{ {i} }}\n// {marker}: finish me\n"),
        );
        g.write("tests/t.rs", "// TEMP-STUB in tests is fine\n");
        g.commit("stub");
        let (code, r) = gate(&g, &[]);
        assert_eq!(code, 1, "{marker}");
        assert_eq!(status(&r, "temp-stub"), "fail", "{marker}");
        let f = &r["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == "temp-stub")
            .unwrap()["findings"][0];
        assert_eq!(f["path"], "src/lib.rs");
        assert_eq!(f["line"], 2);
    }
    let g = Gov::demo();
    branch(&g);
    g.write("tests/t.rs", "// TEMP-STUB in tests\n");
    g.write("docs/x.md", "TEMP-STUB in docs\n");
    g.write("src/fixtures/a.txt", "TEMP-STUB fixture\n");
    g.commit("markers only where allowed");
    let (code, r) = gate(&g, &[]);
    assert_eq!(status(&r, "temp-stub"), "pass", "{r:#}");
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn allowlist_expiry_exemptions_and_promotion_lanes() {
    let g = Gov::demo();
    configure(&g, |c| {
        c.replace("allowlist = []", "allowlist = [{ path = \"src/ok.rs\", issue = \"T-1\", expires = \"2099-01-01\" }, { path = \"src/late.rs\", issue = \"T-2\", expires = \"2020-01-01\" }]")
            .replace("exemptions = [", "exemptions = [{ path = \"src/guard.rs\", reason = \"the guard names the marker\" },")
    });
    // A marker already on main: only a promotion lane's full scan sees it.
    g.write("src/old.rs", "// TEMP-STUB from long ago\n");
    g.commit("old stub on main");
    branch(&g);
    g.write("src/ok.rs", "// TEMP-STUB tracked\nfn a() {}\n");
    g.write("src/late.rs", "// TEMP-STUB overdue\nfn b() {}\n");
    g.write("src/guard.rs", "const M: &str = \"TEMP-STUB\";\n");
    g.write("src/blob.bin", b"\x00\x01TEMP-STUB\x00");
    g.commit("work");
    let (code, r) = gate(&g, &["--target", "main"]);
    assert_eq!(code, 1, "{r:#}");
    let codes = gate_codes(&r, "temp-stub");
    assert!(codes.contains(&"temp-stub-allowed".to_owned()), "{codes:?}");
    assert!(
        codes.contains(&"temp-stub-allowlist-expired".to_owned()),
        "{codes:?}"
    );
    assert!(codes.contains(&"binary-skipped".to_owned()), "{codes:?}");
    assert!(
        !r.to_string().contains("src/old.rs"),
        "outside a promotion lane only the diff is scanned"
    );
    assert!(
        r["exemptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e[0] == "src/guard.rs"),
        "{r:#}"
    );
    let (_, r) = gate(&g, &["--target", "production"]);
    assert_eq!(r["promotion_lane"], true);
    assert!(
        r.to_string().contains("src/old.rs"),
        "a promotion lane scans the whole tree: {r:#}"
    );
    // GITHUB_BASE_REF names the target when --target is absent.
    let out = g
        .treaty()
        .env("GITHUB_BASE_REF", "release/1.0")
        .args(["gate", "--base", "main", "--format", "json"])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["promotion_lane"], true);
}

#[test]
fn no_op_changes_fail_and_real_ones_pass() {
    type Change = Box<dyn Fn(&Gov)>;
    let noops: Vec<(&str, Change)> = vec![
        ("empty", Box::new(|_g: &Gov| {})),
        (
            "whitespace",
            Box::new(|g: &Gov| g.write("src/x.rs", "// old comment\nfn x()  {\n}\n\n")),
        ),
        (
            "json reorder",
            Box::new(|g: &Gov| {
                let v = g.json(AKASH);
                g.write(AKASH, serde_json::to_vec(&v).unwrap());
            }),
        ),
        (
            "comment",
            Box::new(|g: &Gov| g.write("src/x.rs", "fn x() {}\n")),
        ),
        (
            "resign",
            Box::new(|g: &Gov| {
                let e = g.envelope_of(AKASH);
                let mut again = g.envelope_of(AKASH);
                again.signatures.reverse();
                let _ = e;
                let mut b = serde_json::to_vec_pretty(
                    &serde_json::from_slice::<serde_json::Value>(&again.to_bytes()).unwrap(),
                )
                .unwrap();
                b.extend(b"\n\n");
                g.write(&format!("{AKASH}.sig"), b);
            }),
        ),
    ];
    // The verdict is per path class (the default `[no_op]`: governed = "fail", other = "warn"):
    // an empty change and a no-op on governed files fail; a comment or whitespace fix elsewhere
    // is reported and passes — unless the base configuration says `other = "fail"`.
    for (name, change) in noops {
        let governed = !matches!(name, "whitespace" | "comment");
        for other_fails in [false, true] {
            let g = Gov::demo();
            if other_fails {
                configure(&g, |c| c.replace("other = \"warn\"", "other = \"fail\""));
            }
            g.write("src/x.rs", "// old comment\nfn x() {}\n");
            g.write("notes.txt", "some notes\n");
            g.commit("base");
            branch(&g);
            change(&g);
            g.commit(name);
            let (code, r) = gate(&g, &[]);
            let codes = gate_codes(&r, "no-op");
            assert_eq!(codes, vec!["no-op-change"], "{name}: {r:#}");
            if governed || name == "empty" || other_fails {
                assert_eq!(code, 1, "{name} (other fails: {other_fails}): {r:#}");
                assert_eq!(status(&r, "no-op"), "fail", "{name}: {r:#}");
            } else {
                assert_eq!(code, 0, "{name}: {r:#}");
                assert_ne!(status(&r, "no-op"), "fail", "{name}: {r:#}");
            }
        }
    }
    // Adding a valid signer is a real change.
    let g = Gov::demo();
    branch(&g);
    g.sign(AKASH, &["council-3"]);
    g.commit("council-3 signs too");
    let (code, r) = gate(&g, &[]);
    assert_eq!(status(&r, "no-op"), "pass", "{r:#}");
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn head_side_loosening_of_config_schema_or_root_does_not_change_the_verdict() {
    // The pull request switches the stub guard off, even approved by the root group; the
    // base's configuration still judges it.
    let g = Gov::demo();
    branch(&g);
    let cfg = String::from_utf8(g.read("gates/gates.toml"))
        .unwrap()
        .replace("temp-stub = \"on\"", "temp-stub = \"off\"")
        .replace("version = 1", "version = 2");
    g.write("gates/gates.toml", cfg);
    g.sign("gates/gates.toml", &["root-1", "root-2"]);
    g.write("src/y.rs", "// TEMP-STUB\n");
    g.commit("switch the guard off and add a stub");
    let (code, r) = gate(&g, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "temp-stub"), "fail", "{r:#}");

    // The pull request loosens the treaty schema (approved) and adds a treaty only the loose
    // schema accepts: the base's schema judges it.
    let g = Gov::demo();
    branch(&g);
    let mut s = g.json("schemas/treaty.schema.json");
    s["version"] = 2.into();
    s["properties"]["min_reputation"]["maximum"] = 5.into();
    g.write_json("schemas/treaty.schema.json", &s);
    g.sign("schemas/treaty.schema.json", &["root-1", "root-2"]);
    let mut t = g.json(AKASH);
    t["version"] = 2.into();
    t["min_reputation"] = 4.into();
    g.write_json(AKASH, &t);
    g.commit("loosen schema, use it");
    g.treaty().args(["verify"]).assert().code(1);
    let (code, r) = gate(&g, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "schema"), "fail", "{r:#}");

    // The pull request swaps in a root of its own: it must chain from the base's root.
    let g = Gov::demo();
    branch(&g);
    let mallory = treaty::crypto::SigningKey::generate("mallory").unwrap();
    let mut root = g.json("keys/root.json");
    root["version"] = 2.into();
    root["root_group"] = serde_json::to_value(
        treaty::scaffold::group_body("root", 1, vec![treaty::scaffold::member_entry(&mallory)])
            .unwrap(),
    )
    .unwrap();
    g.write_json("keys/root.json", &root);
    g.write_json("keys/roots/2.json", &root);
    g.write(
        "demo-keys/mallory.key",
        serde_json::to_vec(&mallory.to_file(None).unwrap()).unwrap(),
    );
    g.sign("keys/root.json", &["mallory"]);
    g.commit("new root");
    let (code, r) = gate(&g, &[]);
    assert_eq!(code, 1);
    assert!(
        gate_codes(&r, "approval").contains(&"root-signature-threshold".to_owned()),
        "{r:#}"
    );
}

#[test]
fn expiry_warns_within_the_window_and_fails_when_expired() {
    let g = Gov::demo();
    branch(&g);
    bump(&g, 2);
    let mut t = g.json(AKASH);
    t["expires"] = "2030-02-01T00:00:00Z".into();
    g.write_json(AKASH, &t);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("expires 2030-02-01");
    let (code, r) = gate(&g, &["--at", "2030-01-15T00:00:00Z"]);
    assert_eq!(status(&r, "expiry"), "pass");
    assert!(gate_codes(&r, "expiry").contains(&"expiring-soon".to_owned()));
    assert_eq!(code, 0);
    let (code, r) = gate(&g, &["--at", "2030-03-01T00:00:00Z"]);
    assert_eq!(code, 1);
    assert!(gate_codes(&r, "expiry").contains(&"expired".to_owned()));
}

#[test]
fn a_gate_in_warn_mode_reports_without_failing() {
    let g = Gov::demo();
    configure(&g, |c| c.replace("no-op = \"on\"", "no-op = \"warn\""));
    branch(&g);
    let (code, r) = gate(&g, &[]);
    assert_eq!(status(&r, "no-op"), "warn");
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn unusable_bases_exit_2_with_a_reason() {
    let g = Gov::demo();
    branch(&g);
    g.write("src/a.rs", "fn a() {}\n");
    g.commit("a");
    g.git(&["checkout", "-q", "main"]);
    g.write("src/b.rs", "fn b() {}\n");
    g.commit("b");
    g.treaty()
        .args(["gate", "--base", "pr", "--head", "main"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not an ancestor"));
    g.treaty()
        .args(["gate", "--base", "nope", "--head", "main"])
        .assert()
        .code(2);
}

#[test]
fn audit_out_appends_one_line_per_decision() {
    let g = Gov::demo();
    branch(&g);
    g.write("src/z.rs", "// TEMP-STUB\n");
    g.commit("stub");
    let log = g.path("../audit.jsonl");
    for _ in 0..2 {
        g.treaty()
            .args([
                "gate",
                "--base",
                "main",
                "--target",
                "production",
                "--audit-out",
            ])
            .arg(&log)
            .assert()
            .code(1);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().filter(|l| l["kind"] == "gate.verdict").count() == 14);
    assert!(lines
        .iter()
        .any(|l| l["kind"] == "temp-stub.decision" && l["decision"] == "block"));
    assert_eq!(
        g.git(&["status", "--porcelain"]),
        "",
        "the gate writes nothing to the work tree"
    );
}

#[test]
fn github_annotations_job_summary_and_sarif() {
    let g = Gov::demo();
    branch(&g);
    g.write("src/q.rs", "fn q() {}\n// TEMP-STUB, later: 100% sure\n");
    g.commit("stub");
    let summary = g.path("../summary.md");
    let out = g
        .treaty()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["gate", "--base", "main", "--format", "github"])
        .assert()
        .code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains(
            "::error file=src/q.rs,line=2,title=temp-stub [temp-stub-marker]::TEMP-STUB marker"
        ),
        "{text}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("## treaty gate: failed") && md.contains("| `temp-stub` | ❌ fail | 1 |"),
        "{md}"
    );
    let out = g
        .treaty()
        .args(["gate", "--base", "main", "--format", "sarif"])
        .assert()
        .code(1);
    let s: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let res = &s["runs"][0]["results"][0];
    assert_eq!(res["ruleId"], "temp-stub-marker");
    assert_eq!(
        res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "src/q.rs"
    );
    assert_eq!(
        res["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    assert_eq!(
        s["runs"][0]["tool"]["driver"]["rules"][0]["id"],
        "temp-stub-marker"
    );
}

#[test]
fn the_pre_push_hook_blocks_a_failing_push_and_lets_an_honest_one_through() {
    let g = Gov::demo();
    let remote = g.path("../remote.git");
    assert!(std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&remote)
        .status()
        .unwrap()
        .success());
    g.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    g.git(&["push", "-q", "origin", "main"]);
    g.treaty().args(["hooks", "install"]).assert().success();
    g.treaty().args(["hooks", "install"]).assert().code(2);
    branch(&g);
    g.write("src/h.rs", "// TEMP-STUB\n");
    g.commit("stub");
    let push = |g: &Gov| {
        std::process::Command::new("git")
            .current_dir(&g.dir)
            .args(["push", "-q", "origin", "pr"])
            .output()
            .unwrap()
    };
    let out = push(&g);
    assert!(!out.status.success(), "the hook must block the push");
    assert!(String::from_utf8_lossy(&out.stderr).contains("temp-stub-marker"));
    g.write("src/h.rs", "fn h() {}\n");
    g.commit("finish the stub");
    // The branch is new on the remote, so the hook judges it from its merge base with
    // origin/main: the finished stub passes even though an earlier commit had the marker.
    let out = push(&g);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn signed_verdicts_verify_and_tampering_is_detected() {
    let g = Gov::demo();
    branch(&g);
    bump(&g, 2);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("akash v2");
    let out = g.path("../verdict.json");
    g.treaty()
        .args([
            "gate",
            "--base",
            "main",
            "--sign-verdict",
            "demo-keys/ci-1.key",
            "--verdict-out",
        ])
        .arg(&out)
        .assert()
        .success();
    g.treaty()
        .args(["verdict", "verify", "--require-pass"])
        .arg(&out)
        .assert()
        .success()
        .stdout(
            predicates::str::contains("authentic verdict")
                .and(predicates::str::contains("signed by ci-1")),
        );
    // Flip the verdict inside the payload: the signatures no longer verify.
    let mut env = treaty::dsse::Envelope::parse(&std::fs::read(&out).unwrap()).unwrap();
    let text = String::from_utf8(env.payload.clone())
        .unwrap()
        .replace("\"passed\":true", "\"passed\":false");
    env.payload = text.into_bytes();
    std::fs::write(&out, env.to_bytes()).unwrap();
    g.treaty()
        .args(["verdict", "verify"])
        .arg(&out)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("NOT authentic"));
    // Only a member of the verdict group may sign.
    g.treaty()
        .args([
            "gate",
            "--base",
            "main",
            "--sign-verdict",
            "demo-keys/council-1.key",
            "--verdict-out",
        ])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "not a member of the base root's verdict group",
        ));
}

#[test]
fn renames_submodules_and_non_utf8_names_are_judged_without_panicking() {
    use std::os::unix::ffi::OsStrExt;
    // A governed file renamed away.
    let g = Gov::demo();
    branch(&g);
    g.git(&["mv", AKASH, "treaties/AURORA-AKASH-777.json"]);
    g.git(&[
        "mv",
        &format!("{AKASH}.sig"),
        "treaties/AURORA-AKASH-777.json.sig",
    ]);
    g.commit("rename");
    let (code, r) = gate(&g, &[]);
    assert_eq!(code, 1);
    assert!(
        gate_codes(&r, "approval").contains(&"governed-file-deleted".to_owned()),
        "{r:#}"
    );
    assert!(
        r["changed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["change"] == "renamed"),
        "{r:#}"
    );
    // A submodule and a non-UTF-8 name under a governed folder.
    let g = Gov::demo();
    branch(&g);
    let head = g.git(&["rev-parse", "HEAD"]).trim().to_owned();
    g.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{head},vendor/sub"),
    ]);
    std::fs::write(
        g.dir
            .join(std::ffi::OsStr::from_bytes(b"treaties/bad-\xff.json")),
        b"{}",
    )
    .unwrap();
    g.git(&["add", "-A"]);
    g.git(&["commit", "-q", "-m", "odd entries"]);
    let (code, r) = gate(&g, &[]);
    assert_eq!(code, 1);
    assert!(
        gate_codes(&r, "approval").contains(&"path-invalid".to_owned()),
        "{r:#}"
    );
}

#[test]
fn a_base_missing_from_a_shallow_clone_says_how_to_fetch_more_history() {
    let g = Gov::demo();
    g.write("src/one.rs", "fn one() {}\n");
    g.commit("one");
    g.write("src/two.rs", "fn two() {}\n");
    g.commit("two");
    let shallow = g.path("../shallow");
    let url = format!("file://{}", g.dir.display());
    assert!(std::process::Command::new("git")
        .args(["clone", "-q", "--depth", "1", &url])
        .arg(&shallow)
        .status()
        .unwrap()
        .success());
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .current_dir(&shallow)
        .args(["gate", "--base", "HEAD~2", "--head", "HEAD"])
        .assert()
        .code(2)
        .stderr(
            predicates::str::contains("shallow clone")
                .and(predicates::str::contains("--unshallow")),
        );
}
