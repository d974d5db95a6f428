//! The outside red team's classes against `verify` (issue 12): a trust pin a file can replace,
//! rollbacks by other routes, trees git would not check out the same way, a cached verdict for
//! another entry, files nobody judges, and panics or hangs from unsigned input. Each attack test
//! sits beside its honest twin; both run the real binary on real repositories changed with the
//! real `git` CLI.

use std::time::Duration;

use crate::common::*;

fn bump(g: &Gov, rel: &str, version: u64) {
    let mut t = g.json(rel);
    t["version"] = version.into();
    t["quotas"]["concurrent_jobs"] = (100 + version).into();
    g.write_json(rel, &t);
}

fn head(g: &Gov) -> String {
    g.git(&["rev-parse", "HEAD"]).trim().to_owned()
}

/// `git hash-object -w` of raw bytes as an object of `kind`, written without git's own checks.
fn raw_object(g: &Gov, kind: &str, bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("git")
        .args(["hash-object", "-w", "--literally", "-t", kind, "--stdin"])
        .current_dir(&g.dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Entries of a tree object as `git ls-tree` shows them: (mode, name, id).
fn ls_tree(g: &Gov, tree: &str) -> Vec<(String, String, String)> {
    g.git(&["ls-tree", tree])
        .lines()
        .map(|l| {
            let (meta, name) = l.split_once('\t').unwrap();
            let f: Vec<&str> = meta.split(' ').collect();
            (f[0].to_owned(), name.to_owned(), f[2].to_owned())
        })
        .collect()
}

/// A tree object with exactly these entries in this order (no sorting, no de-duplication).
fn raw_tree(g: &Gov, entries: &[(String, String, String)]) -> String {
    let mut b = Vec::new();
    for (mode, name, id) in entries {
        // `git ls-tree` shows trees as 040000; the object itself says 40000.
        let mode = if mode == "040000" {
            "40000"
        } else {
            mode.as_str()
        };
        b.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        b.extend_from_slice(&hex::decode(id).unwrap());
    }
    raw_object(g, "tree", &b)
}

/// Commits `tree` on top of HEAD and moves HEAD there (plumbing: no index involved).
fn commit_tree(g: &Gov, tree: &str, parents: &[&str]) -> String {
    let mut args = vec!["commit-tree", tree, "-m", "crafted"];
    for p in parents {
        args.push("-p");
        args.push(p);
    }
    let c = g.git(&args).trim().to_owned();
    g.git(&["update-ref", "HEAD", &c]);
    c
}

fn verify_at(g: &Gov, rev: &str) -> (i32, serde_json::Value) {
    g.verify(&["--rev", rev])
}

/// `treaty verify` bounded in time: the exit code (a hang fails the test, a panic is 101).
fn verify_exit_within_a_minute(g: &Gov) -> (Option<i32>, String) {
    let out = g
        .treaty()
        .args(["verify", "--format", "json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---- class 1: a trust pin that a file can replace ----------------------------------------

fn root_group_id(g: &Gov) -> String {
    g.json("keys/root.json")["root_group"]["group_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_group_id_pin_is_never_read_from_a_file_of_that_name() {
    let honest = Gov::demo();
    let id = root_group_id(&honest);
    // A hostile federation with its own keys ships a file named after the honest pin, holding
    // its own genesis root: read as a file, it would anchor the hostile chain.
    let tmp = tempfile::tempdir().unwrap();
    let hostile = tmp.path().join("hostile");
    assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .args(["init", hostile.to_str().unwrap(), "--demo"])
        .env("NO_COLOR", "1")
        .assert()
        .success();
    let own_root = std::fs::read(hostile.join("keys/roots/1.json")).unwrap();
    std::fs::write(hostile.join(&id), &own_root).unwrap();
    let out = assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .current_dir(&hostile)
        .args(["verify", "--format", "json", "--trust", &id])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        codes(&r).iter().any(|(c, _)| c == "root-not-pinned"),
        "{:#?}",
        codes(&r)
    );
    // The honest twin: the same pin, with the same decoy file beside it, approves the honest
    // federation (the pin is the group id, whatever the directory holds).
    honest.write(&id, &own_root);
    let (code, r) = honest.verify(&["--trust", &id]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
}

#[test]
fn a_malformed_group_id_is_a_usage_error_and_a_dot_slash_path_is_a_file() {
    let g = Gov::demo();
    for bad in [
        "blake3:xyz",
        "blake3:",
        &format!("blake3:{}", "AB".repeat(32)),
    ] {
        g.treaty()
            .args(["verify", "--trust", bad])
            .assert()
            .code(2)
            .stderr(predicates::str::contains("root group id"));
    }
    // A root file whose name starts with `blake3:` is still usable, spelled as a path.
    let name = format!("blake3:{}", "0".repeat(64));
    std::fs::copy(g.path("keys/roots/1.json"), g.path(&name)).unwrap();
    let (code, r) = g.verify(&["--trust", &format!("./{name}")]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
    assert_eq!(r["trust"]["anchor"], "pinned");
}

// ---- class 2: rollback by other routes --------------------------------------------------------

#[test]
fn deleting_a_governed_file_needs_the_snapshot_role_to_approve_the_smaller_state() {
    let g = Gov::demo();
    g.git(&["rm", "-q", AKASH, &format!("{AKASH}.sig")]);
    g.commit("delete akash (unsigned)");
    let r = assert_rejected(&g, &[], "governed-file-deleted", AKASH);
    assert!(r["findings"]
        .to_string()
        .contains("removed without approval"));
    // Honest twin: the snapshot role approves the state without the file.
    g.treaty()
        .args(["snapshot", "--key", "demo-keys/ci-1.key"])
        .assert()
        .success()
        .stdout(predicates::str::contains(AKASH));
    g.commit("snapshot without akash");
    assert_approved(&g);
}

#[test]
fn re_adding_an_older_signed_version_after_a_deletion_is_a_rollback() {
    let g = Gov::demo();
    let v1 = (g.read(AKASH), g.read(&format!("{AKASH}.sig")));
    bump(&g, AKASH, 2);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("v2");
    assert_approved(&g);
    g.git(&["rm", "-q", AKASH, &format!("{AKASH}.sig")]);
    g.commit("delete");
    g.write(AKASH, &v1.0);
    g.write(&format!("{AKASH}.sig"), &v1.1);
    g.commit("re-add v1, validly signed back then");
    let r = assert_rejected(&g, &[], "version-rollback", AKASH);
    assert!(r.to_string().contains("version 2"), "{r}");
    // Honest twin: re-adding it at a higher, approved version is no rollback.
    bump(&g, AKASH, 3);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("v3");
    assert_approved(&g);
}

#[test]
fn a_merge_whose_first_parent_is_the_stale_side_is_a_rollback() {
    let g = Gov::demo();
    let a = head(&g);
    bump(&g, AKASH, 2);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("v2");
    let b = head(&g);
    let a_tree = g
        .git(&["rev-parse", &format!("{a}^{{tree}}")])
        .trim()
        .to_owned();
    let b_tree = g
        .git(&["rev-parse", &format!("{b}^{{tree}}")])
        .trim()
        .to_owned();
    // The merge (first parent: stale A; second: B) keeps A's tree: v1 again. It is a
    // fast-forward of B, so a push of it to main would be accepted.
    let m = commit_tree(&g, &a_tree, &[&a, &b]);
    let (code, r) = verify_at(&g, &m);
    assert_eq!(code, 1, "{:#?}", codes(&r));
    assert!(has(&r, "version-rollback", AKASH), "{:#?}", codes(&r));
    // Honest twin: the same merge keeping B's tree.
    let ok = commit_tree(&g, &b_tree, &[&a, &b]);
    let (code, r) = verify_at(&g, &ok);
    assert_eq!(code, 0, "{:#?}", codes(&r));
}

#[test]
fn a_shallow_clone_is_refused_unless_the_caller_accepts_judging_without_history() {
    let g = Gov::demo();
    bump(&g, AKASH, 2);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("v2");
    let tmp = tempfile::tempdir().unwrap();
    let shallow = tmp.path().join("shallow");
    let url = format!("file://{}", g.dir.display());
    let st = std::process::Command::new("git")
        .args([
            "clone",
            "-q",
            "--depth",
            "1",
            &url,
            shallow.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(shallow.join(".git/shallow").exists());
    let run = |extra: &[&str]| {
        assert_cmd::Command::cargo_bin("treaty")
            .unwrap()
            .current_dir(&shallow)
            .args(["verify", "--format", "json"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shallow") && err.contains("--allow-shallow"),
        "{err}"
    );
    // Explicitly accepted: judged, and the report says what was not compared.
    let out = run(&["--allow-shallow"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(codes(&r).iter().any(|(c, _)| c == "history-incomplete"));
    // The honest twin: the full clone needs no flag.
    let full = tmp.path().join("full");
    let st = std::process::Command::new("git")
        .args(["clone", "-q", &url, full.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .current_dir(&full)
        .args(["verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn grafts_and_replace_refs_never_change_the_verdict_on_a_commit_id() {
    let g = Gov::demo();
    let v1 = (g.read(AKASH), g.read(&format!("{AKASH}.sig")));
    let c1 = head(&g);
    bump(&g, AKASH, 2);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("v2");
    let c2 = head(&g);
    g.write(AKASH, &v1.0);
    g.write(&format!("{AKASH}.sig"), &v1.1);
    g.commit("roll back");
    let c3 = head(&g);
    let (code, before) = verify_at(&g, &c3);
    assert_eq!(code, 1);
    assert!(has(&before, "version-rollback", AKASH));
    // A graft making c1 the parent of c3 hides c2 from anything that honours grafts.
    g.write(".git/info/grafts", format!("{c3} {c1}\n"));
    let (code, r) = verify_at(&g, &c3);
    assert_eq!(code, 1, "grafts changed the verdict: {:#?}", codes(&r));
    assert!(has(&r, "version-rollback", AKASH));
    std::fs::remove_file(g.path(".git/info/grafts")).unwrap();
    // A replace ref swapping c2 for c1 (what `git log` would then show).
    g.git(&["replace", &c2, &c1]);
    let (code, r) = verify_at(&g, &c3);
    assert_eq!(
        code,
        1,
        "a replace ref changed the verdict: {:#?}",
        codes(&r)
    );
    assert!(has(&r, "version-rollback", AKASH));
    // Honest twin: the approved v2 commit verifies with the replace ref in place.
    let (code, r) = verify_at(&g, &c2);
    assert_eq!(code, 0, "{:#?}", codes(&r));
}

// ---- class 3: trees git would not check out the same way ------------------------------------

/// HEAD with its `treaties` tree replaced by `entries` written raw.
fn with_treaties_tree(g: &Gov, edit: impl Fn(&mut Vec<(String, String, String)>)) -> String {
    let root = ls_tree(g, "HEAD^{tree}");
    let treaties = ls_tree(g, "HEAD:treaties");
    let mut entries = treaties.clone();
    edit(&mut entries);
    let t = raw_tree(g, &entries);
    let root: Vec<_> = root
        .into_iter()
        .map(|(m, n, id)| {
            if n == "treaties" {
                (m, n, t.clone())
            } else {
                (m, n, id)
            }
        })
        .collect();
    let r = raw_tree(g, &root);
    let h = head(g);
    commit_tree(g, &r, &[&h])
}

#[test]
fn trees_with_duplicate_or_unsorted_entries_or_bad_modes_are_refused() {
    let g = Gov::demo();
    let hostile_blob = raw_object(&g, "blob", b"{\"not\": \"the signed treaty\"}\n");
    let base = head(&g);
    type Edit = Box<dyn Fn(&mut Vec<(String, String, String)>)>;
    let akash_name = AKASH.trim_start_matches("treaties/").to_owned();
    let cases: Vec<(&str, Edit)> = vec![
        ("duplicateEntries", {
            let (n, b) = (akash_name.clone(), hostile_blob.clone());
            Box::new(move |e| {
                let i = e.iter().position(|x| x.1 == n).unwrap();
                e.insert(i + 1, ("100644".into(), n.clone(), b.clone()));
            })
        }),
        ("treeNotSorted", Box::new(|e| e.reverse())),
        ("zeroPaddedFilemode", {
            let n = akash_name.clone();
            Box::new(move |e| {
                let x = e.iter_mut().find(|x| x.1 == n).unwrap();
                x.0 = "0100644".into();
            })
        }),
        ("badFilemode", {
            let n = akash_name.clone();
            Box::new(move |e| {
                let x = e.iter_mut().find(|x| x.1 == n).unwrap();
                x.0 = "100600".into();
            })
        }),
        ("hasDotgit", {
            let b = hostile_blob.clone();
            Box::new(move |e| {
                e.insert(0, ("100644".into(), ".GIT".into(), b.clone()));
            })
        }),
    ];
    for (what, edit) in cases {
        g.git(&["update-ref", "HEAD", &base]);
        let c = with_treaties_tree(&g, |e| edit(e));
        let (code, r) = verify_at(&g, &c);
        assert_eq!(code, 1, "{what}: {:#?}", codes(&r));
        let found = r["findings"].as_array().unwrap().iter().any(|f| {
            f["code"] == "tree-malformed" && f["message"].as_str().unwrap().contains(what)
        });
        assert!(found, "{what}: {:#?}", r["findings"]);
    }
    // A duplicated top-level folder in the root tree.
    g.git(&["update-ref", "HEAD", &base]);
    let mut root = ls_tree(&g, "HEAD^{tree}");
    let t = root.iter().find(|x| x.1 == "treaties").unwrap().clone();
    let i = root.iter().position(|x| x.1 == "treaties").unwrap();
    root.insert(i, t);
    let r = raw_tree(&g, &root);
    let c = commit_tree(&g, &r, &[&base]);
    let (code, r) = verify_at(&g, &c);
    assert_eq!(code, 1);
    assert!(codes(&r).iter().any(|(c, _)| c == "tree-malformed"));
    // Honest twin: the same trees written in git's order verify.
    g.git(&["update-ref", "HEAD", &base]);
    let c = with_treaties_tree(&g, |_| {});
    let (code, r) = verify_at(&g, &c);
    assert_eq!(code, 0, "{:#?}", codes(&r));
}

// ---- class 4: a cached verdict for another entry ------------------------------------------

#[test]
fn a_file_turned_into_a_symlink_or_submodule_with_the_same_id_is_not_served_from_cache() {
    for (mode, code) in [("120000", "symlink"), ("160000", "not-a-file")] {
        let g = Gov::demo();
        assert_approved(&g); // fills the verdict cache
        let blob = g
            .git(&["rev-parse", &format!("HEAD:{AKASH}")])
            .trim()
            .to_owned();
        g.git(&[
            "update-index",
            "--cacheinfo",
            &format!("{mode},{blob},{AKASH}"),
        ]);
        g.git(&["commit", "-q", "-m", "same id, other mode"]);
        let (exit, r) = g.verify(&[]);
        assert_eq!(exit, 1, "{mode}: {:#?}", codes(&r));
        assert!(has(&r, code, AKASH), "{mode}: {:#?}", codes(&r));
        // Honest twin: back to a regular file, approved again (from the cache or not).
        g.git(&[
            "update-index",
            "--cacheinfo",
            &format!("100644,{blob},{AKASH}"),
        ]);
        g.git(&["commit", "-q", "-m", "regular again"]);
        assert_approved(&g);
    }
}

// ---- class 5: files nobody judges ---------------------------------------------------------

#[test]
fn every_entry_under_a_governed_folder_is_judged_or_a_finding() {
    let sig = format!("{AKASH}.sig");
    let cases: Vec<(String, &str)> = vec![
        (format!("{AKASH}.sig.sig"), "unexpected-file"),
        (format!("{AKASH}.sig.tsr.sig"), "unexpected-file"),
        ("keys/groups/council.json.sig".to_owned(), "unexpected-file"),
        ("treaties/NOPE.json.sig".to_owned(), "orphan-signature"),
        ("treaties/NOPE.json.sig.tsr".to_owned(), "orphan-signature"),
    ];
    for (path, code) in &cases {
        let g = Gov::demo();
        g.write(path, g.read(&sig));
        g.commit("an artefact nobody judges");
        let (exit, r) = g.verify(&[]);
        assert_eq!(exit, 1, "{path}: {:#?}", codes(&r));
        assert!(has(&r, code, path), "{path}: {:#?}", codes(&r));
    }
    // Non-regular entries under any name, envelope names included.
    let blob_of = |g: &Gov, p: &str| {
        g.git(&["rev-parse", &format!("HEAD:{p}")])
            .trim()
            .to_owned()
    };
    for (name, mode, code) in [
        (format!("{AKASH}.sig.tsr"), "120000", "symlink"),
        ("treaties/X.json.sig".to_owned(), "120000", "symlink"),
        ("policies/vendor".to_owned(), "160000", "not-a-file"),
        ("treaties/sub.json.sig".to_owned(), "160000", "not-a-file"),
    ] {
        let g = Gov::demo();
        let id = if mode == "160000" {
            head(&g)
        } else {
            blob_of(&g, AKASH)
        };
        g.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("{mode},{id},{name}"),
        ]);
        g.git(&["commit", "-q", "-m", "non-regular entry"]);
        let (exit, r) = g.verify(&[]);
        assert_eq!(exit, 1, "{name}: {:#?}", codes(&r));
        assert!(has(&r, code, &name), "{name} ({mode}): {:#?}", codes(&r));
    }
    // Honest twin: the demo's envelopes and timestamps are all judged with their documents.
    assert_approved(&Gov::demo());
}

// ---- class 8: panics and hangs from unsigned input ----------------------------------------

#[test]
fn out_of_range_times_and_huge_versions_never_panic_or_hang() {
    // --at past year 9999 once in UTC: a usage error, not a panic.
    let g = Gov::demo();
    g.treaty()
        .args(["verify", "--at", "9999-12-31T23:00:00-05:00"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("9999"));
    // An unsigned root whose expiry leaves the range, and one claiming version 2^64 - 1.
    for (field, value) in [
        ("expires", serde_json::json!("9999-12-31T23:59:59-23:59")),
        ("version", serde_json::json!(u64::MAX)),
    ] {
        let g = Gov::demo();
        let mut root = g.json("keys/root.json");
        root[field] = value.clone();
        g.write_json("keys/root.json", &root);
        g.commit("unsigned root");
        let (code, err) = verify_exit_within_a_minute(&g);
        assert_eq!(code, Some(1), "{field}={value}: {err}");
    }
    // An envelope with no signatures whose statement expires past the range.
    let g = Gov::demo();
    let mut e = g.envelope_of(AKASH);
    let mut stmt: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
    stmt["predicate"]["expires"] = "9999-12-31T23:30:00-01:00".into();
    e.payload = serde_json::to_vec(&stmt).unwrap();
    e.signatures.clear();
    g.put_envelope(AKASH, &e);
    g.commit("stmt past 9999");
    let (code, err) = verify_exit_within_a_minute(&g);
    assert_eq!(code, Some(1), "{err}");
    // Honest twin: the latest representable instant is a valid --at.
    let g = Gov::demo();
    let (code, r) = g.verify(&["--at", "9999-12-31T23:59:59Z"]);
    assert_eq!(code, 1, "everything has expired by then: {:#?}", codes(&r));
}

#[test]
fn a_malformed_tree_in_the_audit_log_is_refused() {
    let g = Gov::demo();
    g.write(
        "../entries.jsonl",
        "{\"kind\":\"gate.verdict\",\"time\":\"2026-11-22T00:00:00Z\",\"gate\":\"g\",\"status\":\"pass\",\"head\":\"00\"}\n",
    );
    g.treaty()
        .args(["audit", "append", "--from-jsonl", "../entries.jsonl"])
        .assert()
        .success();
    g.treaty()
        .args(["audit", "checkpoint", "--key", "demo-keys/ci-1.key"])
        .assert()
        .success();
    let log = g.git(&["rev-parse", "refs/treaty/audit"]).trim().to_owned();
    let entries = ls_tree(&g, "refs/treaty/audit^{tree}");
    let rewrite = |entries: &[(String, String, String)]| {
        let t = raw_tree(&g, entries);
        let c = g
            .git(&["commit-tree", &t, "-p", &log, "-m", "rewritten"])
            .trim()
            .to_owned();
        g.git(&["update-ref", "refs/treaty/audit", &c]);
    };
    // A second `checkpoint` entry after the real one: which one a reader sees depends on how
    // it looks the name up.
    let forged = raw_object(&g, "blob", b"forged checkpoint\n");
    let mut dup = entries.clone();
    let i = dup.iter().position(|e| e.1 == "checkpoint").unwrap();
    dup.insert(i + 1, ("100644".into(), "checkpoint".into(), forged));
    rewrite(&dup);
    let out = g.treaty().args(["audit", "verify"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("duplicateEntries"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Honest twin: the same log written back in git's order verifies.
    rewrite(&entries);
    g.treaty().args(["audit", "verify"]).assert().success();
}

// ---- the red team's second round against the fix (F1–F6) -----------------------------------

#[test]
fn a_stale_snapshot_does_not_approve_removing_a_document_added_after_it() {
    let g = Gov::demo();
    let new = "treaties/AURORA-AKASH-002.json";
    let mut t = g.json(AKASH);
    t["treaty_id"] = "AURORA-AKASH-002".into();
    g.write_json(new, &t);
    g.sign(new, &["council-1", "council-2", "akash-1"]);
    g.commit("add AKASH-002 (no new snapshot)");
    assert_approved(&g);
    g.git(&["rm", "-q", new, &format!("{new}.sig")]);
    g.commit("remove it again: the old snapshot matches the smaller state by accident");
    let r = assert_rejected(&g, &[], "governed-file-deleted", new);
    assert!(
        r.to_string()
            .contains("beside the very state/snapshot.json"),
        "{r}"
    );
    // Honest twin: a new snapshot of the state without it approves the removal.
    g.treaty()
        .args(["snapshot", "--key", "demo-keys/ci-1.key"])
        .assert()
        .success();
    g.commit("snapshot");
    assert_approved(&g);
}

#[test]
fn partial_clones_and_deepened_clones_never_hide_a_rollback() {
    let g = Gov::demo();
    let v1 = (g.read(AKASH), g.read(&format!("{AKASH}.sig")));
    bump(&g, AKASH, 2);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("v2");
    g.write(AKASH, &v1.0);
    g.write(&format!("{AKASH}.sig"), &v1.1);
    g.commit("roll back");
    g.git(&["config", "uploadpack.allowFilter", "true"]);
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}", g.dir.display());
    let run = |dir: &std::path::Path, extra: &[&str]| {
        assert_cmd::Command::cargo_bin("treaty")
            .unwrap()
            .current_dir(dir)
            .args(["verify", "--format", "json"])
            .args(extra)
            .output()
            .unwrap()
    };
    // A blobless clone: the v2 blob is absent, so its mark cannot be read: missing history.
    let partial = tmp.path().join("partial");
    assert!(std::process::Command::new("git")
        .args(["clone", "-q", "--filter=blob:none", "--no-checkout", &url])
        .arg(&partial)
        .status()
        .unwrap()
        .success());
    let out = run(&partial, &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A shallow clone judged with --allow-shallow, then deepened: the cache made while the
    // history was cut must not hide the rollback once it is whole.
    let shallow = tmp.path().join("shallow");
    assert!(std::process::Command::new("git")
        .args(["clone", "-q", "--depth", "1", &url])
        .arg(&shallow)
        .status()
        .unwrap()
        .success());
    assert_eq!(run(&shallow, &["--allow-shallow"]).status.code(), Some(0));
    assert!(std::process::Command::new("git")
        .args(["fetch", "-q", "--unshallow"])
        .current_dir(&shallow)
        .status()
        .unwrap()
        .success());
    for extra in [&["--allow-shallow"][..], &[][..]] {
        let out = run(&shallow, extra);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            has(&r, "version-rollback", AKASH),
            "{extra:?}: {:#?}",
            codes(&r)
        );
    }
}

#[test]
fn root_version_zero_timestamps_nobody_reads_and_blob_entries_naming_commits_are_findings() {
    // F4: an unsigned root claiming version 0 (a `1..=0` range panicked everywhere).
    let g = Gov::demo();
    let mut root = g.json("keys/root.json");
    root["version"] = 0.into();
    g.write_json("keys/root.json", &root);
    g.commit("root v0");
    let out = g.treaty().args(["verify"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // F5: timestamps beside envelopes that are judged without timestamps.
    for p in ["keys/roots/1.json.sig.tsr", "keys/root.json.sig.tsr"] {
        let g = Gov::demo();
        g.write(p, "junk");
        g.commit("a timestamp nothing reads");
        let (code, r) = g.verify(&[]);
        assert_eq!(code, 1, "{p}");
        assert!(has(&r, "unexpected-file", p), "{p}: {:#?}", codes(&r));
    }
    // F5: with --trust FILE the pinned version's envelope is judged too.
    let g = Gov::demo();
    let pin = g.path("../pin.json");
    std::fs::copy(g.path("keys/root.json"), &pin).unwrap();
    g.write("keys/roots/1.json.sig", "junk");
    g.commit("junk envelope for the pinned version");
    let (code, r) = g.verify(&["--trust", pin.to_str().unwrap()]);
    assert_eq!(code, 1, "{:#?}", codes(&r));
    // F6: a blob-mode entry naming a commit is not a file.
    let g = Gov::demo();
    let c = head(&g);
    let p = format!("{AKASH}.sig.tsr");
    g.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("100644,{c},{p}"),
    ]);
    g.git(&["commit", "-q", "-m", "a timestamp that is a commit"]);
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 1, "{:#?}", codes(&r));
    assert!(has(&r, "not-a-file", &p), "{:#?}", codes(&r));
    // Honest twin.
    assert_approved(&Gov::demo());
}
