//! The outside red team's classes against `treaty gate` (issue 13): TEMP-STUB markers that
//! slipped past the pull-request scan, and a trust anchor that failed open. Each attack beside
//! its honest twin, on real repositories changed with the real git CLI.

use crate::common::*;

fn branch(g: &Gov) {
    g.git(&["checkout", "-q", "-b", "pr"]);
}

fn gate(g: &Gov) -> (i32, serde_json::Value) {
    gate_json(g, &[])
}

fn stub_status(r: &serde_json::Value) -> String {
    r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "temp-stub")
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn stub_paths(r: &serde_json::Value) -> Vec<String> {
    r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "temp-stub")
        .unwrap()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "temp-stub-marker")
        .map(|f| f["path"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn gitattributes_in_the_pull_request_cannot_switch_the_scan_off() {
    for attrs in ["* -diff\n", "*.rs binary\n", "src/** -text -diff\n"] {
        let g = Gov::demo();
        branch(&g);
        g.write(".gitattributes", attrs);
        g.write("src/lib.rs", "pub fn f() {}\n// TEMP-STUB: finish me\n");
        g.commit("stub hidden by attributes");
        let (code, r) = gate(&g);
        assert_eq!(code, 1, "{attrs}: {r:#}");
        assert_eq!(stub_paths(&r), vec!["src/lib.rs"], "{attrs}");
    }
    // Honest twin: attributes alone change nothing the scan cares about.
    let g = Gov::demo();
    branch(&g);
    g.write(".gitattributes", "* -diff\n");
    g.write("src/lib.rs", "pub fn f() {}\n");
    g.commit("attributes, no marker");
    let (_, r) = gate(&g);
    assert_eq!(stub_status(&r), "pass", "{r:#}");
}

#[test]
fn a_rename_or_copy_out_of_an_exempt_or_excluded_path_brings_its_markers_along() {
    // On main: a marker where markers are allowed (excluded tests/, exempt gates/).
    for from in ["tests/helper.rs", "docs/notes.rs", "src/fixtures/x.rs"] {
        let g = Gov::demo();
        g.write(
            from,
            "pub fn helper() -> u32 { 1 }\n// TEMP-STUB: finish me\n",
        );
        g.commit("marker where allowed");
        branch(&g);
        std::fs::create_dir_all(g.path("src")).unwrap();
        g.git(&["mv", from, "src/helper.rs"]);
        g.commit("move it into a protected path");
        let (code, r) = gate(&g);
        assert_eq!(code, 1, "{from}: {r:#}");
        assert_eq!(stub_paths(&r), vec!["src/helper.rs"], "{from}");
        // A copy (the original stays) is the same.
        let g = Gov::demo();
        g.write(
            from,
            "pub fn helper() -> u32 { 1 }\n// TEMP-STUB: finish me\n",
        );
        g.commit("marker where allowed");
        branch(&g);
        g.write("src/helper.rs", g.read(from));
        g.commit("copy it into a protected path");
        let (code, _) = gate(&g);
        assert_eq!(code, 1, "copy from {from}");
    }
    // Honest twin: moving a clean file is fine.
    let g = Gov::demo();
    g.write("tests/helper.rs", "pub fn helper() -> u32 { 1 }\n");
    g.commit("clean helper");
    branch(&g);
    std::fs::create_dir_all(g.path("src")).unwrap();
    g.git(&["mv", "tests/helper.rs", "src/helper.rs"]);
    g.commit("move");
    let (_, r) = gate(&g);
    assert_eq!(stub_status(&r), "pass", "{r:#}");
}

#[test]
fn a_symlink_or_submodule_turned_into_a_file_is_scanned_whole() {
    for mode in ["120000", "160000"] {
        let g = Gov::demo();
        let id = if mode == "120000" {
            let out = std::process::Command::new("git")
                .args(["hash-object", "-w", "--stdin"])
                .current_dir(&g.dir)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write as _;
                    c.stdin
                        .take()
                        .unwrap()
                        .write_all(b"// TEMP-STUB: finish me")?;
                    c.wait_with_output()
                })
                .unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        } else {
            g.git(&["rev-parse", "HEAD"]).trim().to_owned()
        };
        g.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("{mode},{id},src/thing.rs"),
        ]);
        g.git(&["commit", "-q", "-m", "a link or a submodule"]);
        branch(&g);
        g.git(&["rm", "-q", "--cached", "src/thing.rs"]);
        g.write("src/thing.rs", "// TEMP-STUB: finish me\n");
        g.git(&["add", "src/thing.rs"]);
        g.git(&["commit", "-q", "-m", "now a file"]);
        let (code, r) = gate(&g);
        assert_eq!(code, 1, "{mode}: {r:#}");
        assert_eq!(stub_paths(&r), vec!["src/thing.rs"], "{mode}");
    }
}

#[test]
fn look_alike_markers_from_whole_unicode_classes_fail_the_pull_request() {
    for marker in [
        "TEMP\u{2212}STUB",
        "TEMP\u{2E40}STUB",
        "TE\u{2064}MP-STUB",
        "\u{0422}\u{0415}\u{041C}\u{0420}-\u{0405}\u{0422}U\u{0412}",
        "\u{1D413}\u{1D404}\u{1D40C}\u{1D40F}-STUB",
    ] {
        let g = Gov::demo();
        branch(&g);
        g.write("src/lib.rs", format!("pub fn f() {{}}\n// {marker}\n"));
        g.commit("look-alike");
        let (code, r) = gate(&g);
        assert_eq!(code, 1, "{marker:?}: {r:#}");
        assert_eq!(stub_paths(&r), vec!["src/lib.rs"], "{marker:?}");
    }
    // Honest twin: words that merely share letters.
    let g = Gov::demo();
    branch(&g);
    g.write(
        "src/lib.rs",
        "pub fn f() {}\n// template stubborn temperature\n",
    );
    g.commit("ordinary words");
    let (_, r) = gate(&g);
    assert_eq!(stub_status(&r), "pass", "{r:#}");
}

#[test]
fn a_base_without_a_usable_root_is_no_anchor_and_the_gate_refuses_to_judge() {
    for (what, bytes) in [
        ("unparseable", &b"{ not json"[..]),
        ("duplicate keys", &b"{\"version\": 1, \"version\": 2}"[..]),
    ] {
        let g = Gov::demo();
        g.write("keys/root.json", bytes);
        g.commit("base root broken");
        branch(&g);
        g.write("src/lib.rs", "pub fn f() {}\n");
        g.commit("change");
        g.treaty()
            .args(["gate", "--base", "main", "--head", "HEAD"])
            .assert()
            .code(2)
            .stderr(predicates::str::contains("no trust anchor at base"));
        let _ = what;
    }
    let g = Gov::demo();
    g.git(&["rm", "-q", "keys/root.json"]);
    g.commit("no root at base");
    branch(&g);
    g.write("src/lib.rs", "pub fn f() {}\n");
    g.commit("change");
    g.treaty()
        .args(["gate", "--base", "main", "--head", "HEAD"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no trust anchor at base"));
    // Honest twin: a usable base root anchors the run.
    let g = Gov::demo();
    branch(&g);
    g.write("src/lib.rs", "pub fn f() {}\n");
    g.commit("change");
    let (code, r) = gate(&g);
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn a_closed_pipe_ends_quietly_and_a_full_disk_exits_2_never_a_panic() {
    let g = Gov::demo();
    // A reader that went away: more than a pipe's buffer of output, its read end closed first.
    for args in [
        &["completions", "bash"][..],
        &["verify", "--format", "json"][..],
    ] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("treaty"))
            .args(args)
            .current_dir(&g.dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    // The verdict survives a closed pipe: a failing gate still exits 1, never 0.
    let g2 = Gov::demo();
    g2.git(&["checkout", "-q", "-b", "pr"]);
    g2.write("src/lib.rs", "// TEMP-STUB\n");
    g2.commit("marker");
    for format in ["human", "json", "github", "sarif"] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("treaty"))
            .args([
                "gate", "--base", "main", "--head", "HEAD", "--format", format,
            ])
            .current_dir(&g2.dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A full disk: said once, exit 2.
    for args in [
        &["verify", "--format", "json"][..],
        &["verify"][..],
        &[
            "gate", "--base", "HEAD", "--head", "HEAD", "--format", "sarif",
        ][..],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("treaty"))
            .args(args)
            .current_dir(&g.dir)
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn cut_history_between_base_and_head_says_fetch_more_not_rebase() {
    let g = Gov::demo();
    let base = g.git(&["rev-parse", "HEAD"]).trim().to_owned();
    g.write("src/one.rs", "fn one() {}\n");
    g.commit("one");
    g.write("src/two.rs", "fn two() {}\n");
    g.commit("two");
    g.git(&["config", "uploadpack.allowAnySHA1InWant", "true"]);
    let shallow = g.path("../shallow");
    let url = format!("file://{}", g.dir.display());
    let git = |args: &[&str], dir: &std::path::Path| {
        assert!(std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap()
            .success());
    };
    git(
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &url,
            shallow.to_str().unwrap(),
        ],
        &g.dir,
    );
    // Base is there too, but nothing between it and head.
    git(&["fetch", "-q", "--depth", "1", "origin", &base], &shallow);
    let out = assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .current_dir(&shallow)
        .args(["gate", "--base", &base, "--head", "HEAD"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("shallow") && err.contains("--unshallow"),
        "{err}"
    );
    assert!(!err.contains("not an ancestor"), "{err}");
    // Honest twin: with the history fetched, the same gate judges.
    git(&["fetch", "-q", "--unshallow"], &shallow);
    let out = assert_cmd::Command::cargo_bin("treaty")
        .unwrap()
        .current_dir(&shallow)
        .args([
            "gate", "--base", &base, "--head", "HEAD", "--format", "json",
        ])
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_non_utf8_names_that_display_alike_are_judged_each_by_its_own_bytes() {
    use std::os::unix::ffi::OsStrExt as _;
    let g = Gov::demo();
    branch(&g);
    let blob = |text: &[u8]| {
        use std::io::Write as _;
        let mut c = std::process::Command::new("git")
            .args(["hash-object", "-w", "--stdin"])
            .current_dir(&g.dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(text).unwrap();
        String::from_utf8(c.wait_with_output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned()
    };
    let clean = blob(b"pub fn f() {}\n");
    let marked = blob(b"pub fn g() {}\n// TEMP-STUB: finish me\n");
    // Both names show as `src/a\u{FFFD}.rs`; the marked file sorts second.
    for (name, id) in [
        (&b"src/a\xfe.rs"[..], &clean),
        (&b"src/a\xff.rs"[..], &marked),
    ] {
        let mut info = format!("100644,{id},").into_bytes();
        info.extend_from_slice(name);
        let st = std::process::Command::new("git")
            .args(["update-index", "--add", "--cacheinfo"])
            .arg(std::ffi::OsStr::from_bytes(&info))
            .current_dir(&g.dir)
            .status()
            .unwrap();
        assert!(st.success());
    }
    g.git(&["commit", "-q", "-m", "two names that look alike"]);
    let (code, r) = gate(&g);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(stub_paths(&r).len(), 1, "{r:#}");
    assert_eq!(stub_status(&r), "fail");
}

#[test]
fn a_symlink_into_an_excluded_folder_or_a_utf16_file_cannot_hide_a_marker() {
    use std::os::unix::fs::symlink;
    // A link in a protected path to an excluded file holding a marker.
    let g = Gov::demo();
    g.write("tests/fixtures/stub.rs", "// TEMP-STUB\nfn f() {}\n");
    g.commit("a marker where markers are allowed");
    branch(&g);
    std::fs::create_dir_all(g.path("src")).unwrap();
    symlink("../tests/fixtures/stub.rs", g.path("src/lib.rs")).unwrap();
    g.commit("link it into src");
    let (code, r) = gate(&g);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(stub_paths(&r), vec!["src/lib.rs"], "{r:#}");
    // A link the guard cannot follow (a directory, outside the repository) fails unread.
    for target in ["../tests", "/etc/passwd", "../../outside.rs"] {
        let g = Gov::demo();
        g.write("tests/x.rs", "fn x() {}\n");
        g.commit("tests");
        branch(&g);
        std::fs::create_dir_all(g.path("src")).unwrap();
        symlink(target, g.path("src/linked")).unwrap();
        g.commit("an unfollowable link");
        let (code, r) = gate(&g);
        assert_eq!(code, 1, "{target}: {r:#}");
        assert!(
            r.to_string().contains("temp-stub-unscanned"),
            "{target}: {r:#}"
        );
    }
    // UTF-16 text with a byte order mark is decoded and scanned, little and big endian.
    for be in [false, true] {
        let g = Gov::demo();
        branch(&g);
        let mut b = if be {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for u in "// TEMP-STUB\r\nclass A {}\r\n".encode_utf16() {
            b.extend_from_slice(&if be { u.to_be_bytes() } else { u.to_le_bytes() });
        }
        g.write("src/A.cs", b);
        g.commit("utf-16");
        let (code, r) = gate(&g);
        assert_eq!(code, 1, "be={be}: {r:#}");
        assert_eq!(stub_paths(&r), vec!["src/A.cs"]);
    }
    // Honest twin: a link to a clean file inside the tree, and UTF-16 without a marker.
    let g = Gov::demo();
    g.write("tests/fixtures/clean.rs", "fn f() {}\n");
    g.commit("clean");
    branch(&g);
    std::fs::create_dir_all(g.path("src")).unwrap();
    symlink("../tests/fixtures/clean.rs", g.path("src/lib.rs")).unwrap();
    let mut b = vec![0xFF, 0xFE];
    for u in "class A {}\n".encode_utf16() {
        b.extend_from_slice(&u.to_le_bytes());
    }
    g.write("src/A.cs", b);
    g.commit("clean link and utf-16");
    let (_, r) = gate(&g);
    assert_eq!(stub_status(&r), "pass", "{r:#}");
}

#[test]
fn renewing_an_approval_with_the_same_signers_is_a_real_change() {
    let g = Gov::demo();
    let sign = |g: &Gov, expires: &str| {
        for k in ["council-1", "council-2", "akash-1"] {
            // The first signer of a new expiry starts the new approval (--restart).
            let restart: &[&str] = if k == "council-1" {
                &["--restart"]
            } else {
                &[]
            };
            g.treaty()
                .args([
                    "sign",
                    AKASH,
                    "--key",
                    &format!("demo-keys/{k}.key"),
                    "--expires",
                    expires,
                ])
                .args(restart)
                .assert()
                .success();
        }
    };
    sign(&g, "2030-01-01T00:00:00Z");
    g.commit("approval expiring 2030");
    branch(&g);
    sign(&g, "2035-01-01T00:00:00Z");
    g.commit("renewed to 2035");
    let (_, r) = gate(&g);
    let noop = r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "no-op")
        .unwrap();
    assert_eq!(noop["status"], "pass", "{r:#}");
    // Honest twin of the guard: re-signing with the same signers and the same expiry is a no-op.
    let g = Gov::demo();
    branch(&g);
    let mut e = g.envelope_of(AKASH);
    e.signatures.reverse();
    g.put_envelope(AKASH, &e);
    g.commit("signatures reordered");
    let (_, r) = gate(&g);
    let noop = r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "no-op")
        .unwrap();
    assert_eq!(noop["status"], "fail", "{r:#}");
}
