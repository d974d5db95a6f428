//! The command line as a user meets it: exit codes, init, key files, sign, validate, status.

use crate::common::*;
use predicates::prelude::*;

#[test]
fn init_demo_makes_a_repository_that_verifies_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fresh");
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .args(["init", dir.to_str().unwrap(), "--demo"])
        .assert()
        .success();
    let head = std::process::Command::new("git")
        .args(["-C", dir.to_str().unwrap(), "symbolic-ref", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&head.stdout).trim(),
        "refs/heads/main"
    );
    let out = assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .current_dir(&dir)
        .args(["verify"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("result: APPROVED"), "{text}");
    assert!(
        text.contains("not pinned"),
        "the output says the root was not pinned"
    );
    let status = std::process::Command::new("git")
        .args(["-C", dir.to_str().unwrap(), "status", "--porcelain"])
        .output()
        .unwrap();
    assert!(
        status.stdout.is_empty(),
        "demo keys must be git-ignored: {}",
        String::from_utf8_lossy(&status.stdout)
    );
    assert_eq!(
        std::fs::read_dir(dir.join("treaties"))
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json"))
            .count(),
        7
    );
}

#[test]
fn init_refuses_to_overwrite_a_governance_repository() {
    let g = Gov::demo();
    g.treaty()
        .args(["init", ".", "--demo"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("refusing to overwrite"));
}

#[test]
fn unresolvable_revision_and_missing_repository_exit_2() {
    let g = Gov::demo();
    g.treaty()
        .args(["verify", "--rev", "no-such-branch"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot resolve revision"));
    let tmp = tempfile::tempdir().unwrap();
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .current_dir(tmp.path())
        .arg("verify")
        .assert()
        .code(2);
    g.treaty().args(["verify", "--bogus-flag"]).assert().code(2);
    g.treaty()
        .args(["verify", "--at", "yesterday"])
        .assert()
        .code(2);
}

#[test]
fn verify_judges_git_objects_not_the_work_tree() {
    let g = Gov::demo();
    // An uncommitted edit does not change the verdict on HEAD…
    g.write(AKASH, "tampered\n");
    g.treaty().arg("verify").assert().success();
    // …but --worktree judges it.
    g.treaty()
        .args(["verify", "--worktree"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("parse-error"));
}

#[test]
fn verify_can_judge_any_old_revision() {
    let g = Gov::demo();
    let good = g.git(&["rev-parse", "HEAD"]).trim().to_owned();
    g.write(AKASH, "tampered\n");
    g.commit("break");
    g.treaty().arg("verify").assert().code(1);
    g.treaty()
        .args(["verify", "--rev", &good])
        .assert()
        .success();
}

#[test]
fn checking_commands_never_write_to_the_work_tree_or_index() {
    let g = Gov::demo();
    g.write(AKASH, "tampered\n");
    // `git status` itself may refresh the index, so read it before and compare right after.
    let before_status = g.git(&["status", "--porcelain"]);
    let index = g.path(".git/index");
    let before_index = std::fs::read(&index).unwrap();
    let before_mtime = std::fs::metadata(&index).unwrap().modified().unwrap();
    let before_file = g.read(AKASH);
    for args in [
        vec!["verify"],
        vec!["verify", "--worktree"],
        vec!["status"],
        vec!["status", "--worktree"],
        vec!["validate"],
    ] {
        let _ = g.treaty().args(&args).output().unwrap();
    }
    assert_eq!(std::fs::read(&index).unwrap(), before_index);
    assert_eq!(
        std::fs::metadata(&index).unwrap().modified().unwrap(),
        before_mtime
    );
    assert_eq!(g.read(AKASH), before_file);
    assert_eq!(g.git(&["status", "--porcelain"]), before_status);
}

#[test]
fn status_lists_who_signed_and_who_may_still_sign() {
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["version"] = 2.into();
    t["regions"] = serde_json::json!(["us-east"]);
    g.write_json(AKASH, &t);
    g.sign(AKASH, &["council-2"]);
    let out = g.treaty().args(["status", "--worktree"]).assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let line = text
        .lines()
        .skip_while(|l| !l.starts_with(AKASH))
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains(&format!("{AKASH} v2: not approved")),
        "{text}"
    );
    assert!(
        line.contains("akash") || text.contains("council      1/2"),
        "{text}"
    );
    assert!(
        text.contains("signed: council-2  may still sign: council-1, council-3"),
        "{text}"
    );
    // JSON carries the same.
    let out = g
        .treaty()
        .args(["status", "--worktree", "--format", "json"])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let council = file(&r, AKASH)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "council")
        .unwrap()
        .clone();
    assert_eq!(council["signed"], serde_json::json!(["council-2"]));
    assert_eq!(council["met"], false);
}

#[test]
fn resigning_keeps_valid_entries_and_changed_content_drops_stale_ones() {
    let g = Gov::demo();
    g.treaty()
        .args(["sign", AKASH, "--key", "demo-keys/council-1.key"])
        .assert()
        .success()
        .stdout(predicate::str::contains("already signed"));
    assert_eq!(
        g.git(&["status", "--porcelain"]),
        "",
        "re-signing identical content changes nothing"
    );
    let mut t = g.json(AKASH);
    t["version"] = 2.into();
    t["status"] = "suspended".into();
    g.write_json(AKASH, &t);
    g.treaty()
        .args(["sign", AKASH, "--key", "demo-keys/council-1.key"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "dropped 6 signature entries made for another statement",
        ));
    assert_eq!(g.envelope_of(AKASH).signatures.len(), 2);
}

#[test]
fn sign_refuses_a_file_that_fails_its_schema() {
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["version"] = 2.into();
    t["parties"]["provider"]["network"] = "mystery".into();
    g.write_json(AKASH, &t);
    g.treaty()
        .args(["sign", AKASH, "--key", "demo-keys/council-1.key"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("fails its schema")
                .and(predicate::str::contains("/parties/provider/network")),
        );
}

#[test]
fn offline_signing_of_a_copy_with_as() {
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["version"] = 2.into();
    t["min_reputation"] = 0.9.into();
    g.write_json(AKASH, &t);
    // The air-gapped signer gets a copy of the file and of the repository (no .git needed).
    let air = tempfile::tempdir().unwrap();
    let copy = air.path().join("AURORA-AKASH-001.json");
    std::fs::copy(g.path(AKASH), &copy).unwrap();
    let repo_copy = air.path().join("gov");
    std::fs::create_dir_all(&repo_copy).unwrap();
    for d in ["keys", "schemas"] {
        assert!(std::process::Command::new("cp")
            .arg("-a")
            .arg(g.path(d))
            .arg(repo_copy.join(d))
            .status()
            .unwrap()
            .success());
    }
    for id in ["council-1", "council-2", "akash-1"] {
        assert_cmd::Command::cargo_bin("treaty")
            .unwrap()
            .current_dir(air.path())
            .args([
                "sign",
                copy.to_str().unwrap(),
                "--as",
                AKASH,
                "--repo",
                repo_copy.to_str().unwrap(),
                "--key",
            ])
            .arg(g.path(&format!("demo-keys/{id}.key")))
            .assert()
            .success();
    }
    std::fs::copy(
        air.path().join("AURORA-AKASH-001.json.sig"),
        g.path(&format!("{AKASH}.sig")),
    )
    .unwrap();
    g.commit("signed offline");
    assert_approved(&g);
}

#[test]
fn validate_names_file_pointer_and_line_and_column() {
    let g = Gov::demo();
    let text = String::from_utf8(g.read(AKASH))
        .unwrap()
        .replace("\"min_reputation\": 0.8", "\"min_reputation\": 1.5");
    g.write(AKASH, text);
    let out = g.treaty().args(["validate", AKASH]).assert().code(1);
    let s = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(s.contains(&format!("{AKASH}:")), "{s}");
    assert!(s.contains("/min_reputation"), "{s}");
    let line_no = String::from_utf8(g.read(AKASH))
        .unwrap()
        .lines()
        .position(|l| l.contains("min_reputation"))
        .unwrap()
        + 1;
    assert!(s.contains(&format!("{AKASH}:{line_no}:")), "{s}");
    g.write(AKASH, "{\n  \"a\": ,\n}");
    g.treaty()
        .args(["validate", AKASH])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!("{AKASH}:2:")));
    let g = Gov::demo();
    g.treaty().arg("validate").assert().success();
}

#[test]
fn validate_refuses_bad_groups_at_once_with_the_reason() {
    let g = Gov::demo();
    let base = g.json("keys/groups/council.json");
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("threshold 0", Box::new(|v| v["threshold"] = 0.into())),
        ("threshold 4", Box::new(|v| v["threshold"] = 4.into())),
        (
            "twice",
            Box::new(|v| {
                let m = v["members"][0].clone();
                v["members"][1]["id"] = m["id"].clone();
            }),
        ),
        (
            "also has",
            Box::new(|v| {
                let m = v["members"][0].clone();
                v["members"][1]["ed25519"] = m["ed25519"].clone();
            }),
        ),
        (
            "group_id is",
            Box::new(|v| v["group_id"] = format!("blake3:{}", "0".repeat(64)).into()),
        ),
    ];
    for (want, mutate) in cases {
        let mut v = base.clone();
        mutate(&mut v);
        g.write_json("keys/groups/council.json", &v);
        g.treaty()
            .args(["validate", "keys/groups/council.json"])
            .assert()
            .code(1)
            .stdout(predicate::str::contains(want));
    }
}

#[test]
fn key_gen_encrypts_with_the_passphrase_and_writes_0600() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .env("TREATY_PASSPHRASE", "correct horse battery staple")
        .args([
            "key",
            "gen",
            "--id",
            "alice",
            "--out",
            tmp.path().to_str().unwrap(),
        ])
        .assert()
        .success();
    let key = tmp.path().join("alice.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.contains("argon2id+xchacha20poly1305"));
    assert!(treaty::crypto::SigningKey::load(&key, || Ok("wrong".into())).is_err());
    assert!(
        treaty::crypto::SigningKey::load(&key, || Ok("correct horse battery staple".into()))
            .is_ok()
    );
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .args(["key", "show", key.to_str().unwrap()])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("member: alice")
                .and(predicate::str::contains("ml-dsa-65 key id:")),
        );
    // Never overwrite a key.
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .env("TREATY_PASSPHRASE", "x")
        .args([
            "key",
            "gen",
            "--id",
            "alice",
            "--out",
            tmp.path().to_str().unwrap(),
        ])
        .assert()
        .code(2);
}

#[test]
fn init_with_generated_root_keys_then_sign_then_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    for id in ["ann", "bob"] {
        assert_cmd::Command::cargo_bin("treaty")
            .unwrap()
            .args([
                "key",
                "gen",
                "--id",
                id,
                "--out",
                keys.to_str().unwrap(),
                "--insecure-unencrypted",
            ])
            .assert()
            .success();
    }
    let gov = tmp.path().join("gov");
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .args([
            "init",
            gov.to_str().unwrap(),
            "--threshold",
            "2",
            "--root-key",
        ])
        .arg(keys.join("ann.pub.json"))
        .arg("--root-key")
        .arg(keys.join("bob.pub.json"))
        .assert()
        .success();
    let mut files = vec!["keys/root.json".to_owned(), "gates/gates.toml".to_owned()];
    for e in std::fs::read_dir(gov.join("schemas")).unwrap() {
        files.push(format!(
            "schemas/{}",
            e.unwrap().file_name().to_string_lossy()
        ));
    }
    for f in &files {
        for id in ["ann", "bob"] {
            assert_cmd::Command::cargo_bin("treaty")
                .unwrap()
                .current_dir(&gov)
                .args(["sign", f, "--key"])
                .arg(keys.join(format!("{id}.key")))
                .assert()
                .success();
        }
    }
    let git = |args: &[&str]| {
        let st = std::process::Command::new("git")
            .current_dir(&gov)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@e.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@e.invalid")
            .status()
            .unwrap();
        assert!(st.success());
    };
    git(&["add", "-A"]);
    git(&["commit", "-qm", "genesis"]);
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .current_dir(&gov)
        .arg("verify")
        .assert()
        .success();
}

#[test]
fn completions_and_help_work() {
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("treaty"));
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"));
}
