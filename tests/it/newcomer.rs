//! Issue 14: the newcomer's two commands, a CLI that fails closed and never drops a signature,
//! and the operator's daily questions. One test per item; each rejection has its honest twin.

use crate::common::*;
use std::path::Path;

fn treaty_in(dir: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("treaty").unwrap();
    c.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("TREATY_PASSPHRASE");
    c
}

/// `treaty ARGS` in `g` on a "full disk": a 4 KiB file-size limit, with SIGXFSZ ignored
/// (inherited across exec) so a write past it fails with EFBIG — the same error path as ENOSPC —
/// instead of killing the process.
fn full_disk(g: &Gov, args: &str) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("treaty");
    std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 4; exec {} {args}",
            bin.display()
        ))
        .current_dir(&g.dir)
        .env("NO_COLOR", "1")
        .env("TREATY_PASSPHRASE", "pw")
        .output()
        .unwrap()
}

fn code(c: &mut assert_cmd::Command) -> i32 {
    c.output().unwrap().status.code().unwrap_or(-1)
}

fn stderr(c: &mut assert_cmd::Command) -> (i32, String) {
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout),
    )
}

// ---- the two commands ----------------------------------------------------------------------

/// The README's first command is `cargo run --release -- verify`: cargo picks the `treaty`
/// binary (`default-run`), and that binary, run in a fresh clone of this repository, approves
/// its own governance state.
#[test]
fn the_readme_run_command_works_on_a_fresh_clone() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(src.join("README.md")).unwrap();
    let first_block = readme.split("```sh\n").nth(1).unwrap();
    let cmds: Vec<&str> = first_block
        .lines()
        .take_while(|l| !l.starts_with("```"))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(
        cmds,
        ["cargo run --release -- verify", "bash .ci/test"],
        "README's two commands changed"
    );
    let toml = std::fs::read_to_string(src.join("Cargo.toml")).unwrap();
    assert!(
        toml.contains("\ndefault-run = \"treaty\"\n"),
        "cargo run needs default-run"
    );
    // A fresh clone (full history, as `git clone` makes), judged by the binary cargo runs.
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("treaty");
    let st = std::process::Command::new("git")
        .args(["clone", "-q", "--no-local"])
        .arg(src)
        .arg(&clone)
        .status()
        .unwrap();
    assert!(st.success());
    let out = treaty_in(&clone).arg("verify").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test command installs what the tests need: every program a test starts is in
/// .ci/setup's package list, and the README's command runs that script.
#[test]
fn the_test_command_installs_every_program_the_tests_start() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let setup = std::fs::read_to_string(src.join(".ci/setup")).unwrap();
    for pkg in [
        "git",
        "openssl",
        "gnupg",
        "openssh-server",
        "openssh-client",
        "python3-venv",
        "curl",
    ] {
        assert!(
            setup.contains(&format!(" {pkg}")) || setup.contains(&format!("({pkg}")),
            "{pkg} is not installed by .ci/setup"
        );
    }
    let test = std::fs::read_to_string(src.join(".ci/test")).unwrap();
    assert!(test.contains("source .ci/setup"));
    assert!(test.contains("cargo test --workspace --all-features"));
    assert!(test.contains("expected-skips"));
}

// ---- fail closed -----------------------------------------------------------------------------

#[test]
fn validate_outside_a_repository_refuses_and_inside_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, e) = stderr(treaty_in(tmp.path()).arg("validate"));
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("not inside a git repository"), "{e}");
    let g = Gov::demo();
    g.treaty().arg("validate").assert().code(0);
}

/// One set of path and size rules: what verify rejects, validate rejects.
#[test]
fn validate_applies_verifys_name_and_size_rules() {
    use std::os::unix::ffi::OsStrExt as _;
    for (name, code) in [
        (&b"treaties/cafe\xcc\x81.json"[..], "path-invalid"),
        (&b"treaties/bad\xff.json"[..], "path-invalid"),
    ] {
        let g = Gov::demo();
        let p = g.dir.join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(&p, b"{}").unwrap();
        let out = g
            .treaty()
            .args(["validate", "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == code),
            "{v}"
        );
    }
    let g = Gov::demo();
    let f = std::fs::File::create(g.path("treaties/BIG.json")).unwrap();
    f.set_len(200 << 20).unwrap();
    for args in [vec!["validate"], vec!["validate", "treaties/BIG.json"]] {
        let (c, e) = stderr(g.treaty().args(&args));
        assert_eq!(c, 1, "{e}");
        assert!(e.contains("file-too-large"), "{e}");
    }
}

#[test]
fn renew_with_a_malformed_root_cannot_say_nothing_expires() {
    let g = Gov::demo();
    g.treaty().arg("renew").assert().code(0);
    g.write("keys/root.json", "{\"x\":1}\n");
    let (c, e) = stderr(g.treaty().arg("renew"));
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("no usable root of trust"), "{e}");
    assert!(!e.contains("nothing expires"), "{e}");
}

#[test]
fn renew_lists_an_envelope_whose_expiry_it_cannot_read() {
    let g = Gov::demo();
    g.write("treaties/AURORA-AKASH-001.json.sig", "not json\n");
    let (c, e) = stderr(g.treaty().args(["renew", "--within-days", "0"]));
    assert_eq!(c, 1, "{e}");
    assert!(
        e.contains("treaties/AURORA-AKASH-001.json expires unknown"),
        "{e}"
    );
}

/// The pre-push hook refuses a push it cannot judge (no base to compare with) and runs the gate
/// when it can.
#[test]
fn the_pre_push_hook_fails_closed_without_a_base() {
    let g = Gov::demo();
    let bare = g.path("../remote.git");
    std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&bare)
        .status()
        .unwrap();
    g.git(&["remote", "add", "origin", bare.to_str().unwrap()]);
    g.treaty().args(["hooks", "install"]).assert().success();
    // An uncovered file on a new branch, and no origin/main to judge it against.
    g.git(&["switch", "-q", "-c", "feature"]);
    g.write("treaties/UNCOVERED.json", "{}\n");
    g.commit("uncovered");
    let push = |g: &Gov, env: &[(&str, &str)]| {
        let mut c = std::process::Command::new("git");
        c.args(["push", "-q", "origin", "feature"])
            .current_dir(&g.dir);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = push(&g, &[]);
    assert!(!out.status.success(), "pushed without a base");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no merge base with origin/main"));
    // With a base it runs the gate, which refuses the uncovered file.
    let out = push(&g, &[("TREATY_GATE_BASE", "main")]);
    assert!(
        !out.status.success(),
        "the gate let an uncovered file through"
    );
    // The honest twin: an approved change passes.
    g.git(&["switch", "-q", "main"]);
    g.git(&["switch", "-q", "-c", "honest"]);
    g.sign("treaties/AURORA-AKASH-001.json", &["council-3"]);
    g.commit("council-3 co-signs");
    let mut c = std::process::Command::new("git");
    let out = c
        .args(["push", "-q", "origin", "honest"])
        .env("TREATY_GATE_BASE", "main")
        .current_dir(&g.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_audit_ref_that_is_not_a_log_is_refused_not_read_as_empty() {
    let g = Gov::demo();
    // Honest: no log at all is an empty log.
    g.treaty().args(["audit", "verify"]).assert().code(0);
    g.git(&["update-ref", "refs/treaty/audit", "HEAD"]);
    for args in [
        vec!["audit", "verify"],
        vec![
            "gate",
            "--base",
            "HEAD",
            "--head",
            "HEAD",
            "--allow-pending",
        ],
    ] {
        let (c, e) = stderr(g.treaty().args(&args));
        assert_eq!(c, 2, "{args:?}: {e}");
        assert!(e.contains("is not an audit log"), "{e}");
    }
    let (c, e) = stderr(g.treaty().args([
        "gate",
        "--base",
        "HEAD",
        "--head",
        "HEAD",
        "--audit-head",
        "no-such-rev",
    ]));
    assert_eq!(c, 2, "{e}");
}

/// One table (docs/model.md § Exit codes): usage, I/O and unresolvable input → 2; content and
/// key membership → 1.
#[test]
fn exit_codes_follow_one_table() {
    let outside = tempfile::tempdir().unwrap();
    for args in [
        vec!["validate"],
        vec!["verify"],
        vec!["status"],
        vec!["renew"],
        vec!["trust", "show"],
        vec!["audit", "verify"],
        vec!["gate", "--base", "HEAD", "--head", "HEAD"],
        vec!["snapshot", "--key", "x.key"],
        vec!["release", "verify", "dist/x"],
    ] {
        assert_eq!(
            code(treaty_in(outside.path()).args(&args)),
            2,
            "outside a repository: {args:?}"
        );
    }
    let g = Gov::demo();
    for args in [
        vec!["verify", "--rev", "no-such-rev"],
        vec!["gate", "--base", "no-such-rev", "--head", "HEAD"],
        vec![
            "gate",
            "--base",
            "HEAD",
            "--head",
            "HEAD",
            "--audit-head",
            "no-such-rev",
        ],
        vec!["release", "verify", "dist/x", "--trust-rev", "no-such-rev"],
        vec!["emit", "--from", "no-such-rev", "--to", "HEAD"],
        vec!["renew", "--within-days", "3000000"],
        vec!["renew", "--rotate-root"],
        vec![
            "heartbeat",
            "--key",
            "demo-keys/ci-1.key",
            "--ttl",
            "2932000d",
        ],
        vec![
            "sign",
            "treaties/AURORA-AKASH-001.json",
            "--key",
            "demo-keys/council-3.key",
            "--expires",
            "2001-01-01T00:00:00Z",
        ],
        vec!["root", "rotate", "--expires", "2001-01-01T00:00:00Z"],
    ] {
        assert_eq!(code(g.treaty().args(&args)), 2, "{args:?}");
    }
    // Key membership is a finding (1): sign, gate --sign-verdict, snapshot, heartbeat.
    for args in [
        vec![
            "sign",
            "treaties/AURORA-AKASH-001.json",
            "--key",
            "demo-keys/ionet-1.key",
        ],
        vec![
            "gate",
            "--base",
            "HEAD",
            "--head",
            "HEAD",
            "--sign-verdict",
            "demo-keys/council-1.key",
            "--verdict-out",
            "../v.json",
        ],
        vec!["snapshot", "--key", "demo-keys/council-1.key"],
        vec!["heartbeat", "--key", "demo-keys/council-1.key"],
    ] {
        assert_eq!(code(g.treaty().args(&args)), 1, "{args:?}");
    }
    assert!(
        !g.path("../v.json").exists(),
        "a refused verdict key wrote a verdict"
    );
    // No root: a finding for snapshot and heartbeat alike.
    let g = Gov::demo();
    std::fs::remove_file(g.path("keys/root.json")).unwrap();
    for args in [
        vec!["snapshot", "--key", "demo-keys/ci-1.key"],
        vec!["heartbeat", "--key", "demo-keys/ci-1.key"],
    ] {
        assert_eq!(code(g.treaty().args(&args)), 1, "no root: {args:?}");
    }
}

/// Every numeric flag, driven with extreme values: never a panic (101), never a hang, and an
/// out-of-bounds value is a usage error (2).
#[test]
fn every_numeric_flag_survives_extreme_values() {
    use proptest::prelude::*;
    let g = Gov::demo();
    let flags: &[(&[&str], &str)] = &[
        (&["renew", "--within-days"], ""),
        (&["heartbeat", "--key", "demo-keys/ci-1.key", "--ttl"], "d"),
        (&["heartbeat", "--key", "demo-keys/ci-1.key", "--ttl"], "s"),
        (
            &[
                "release",
                "timestamp",
                "dist/x",
                "--tsa",
                "http://127.0.0.1:9/",
                "--timeout",
            ],
            "",
        ),
        (
            &[
                "release",
                "timestamp",
                "dist/x",
                "--tsa",
                "http://127.0.0.1:9/",
                "--retries",
            ],
            "",
        ),
        (
            &[
                "release",
                "timestamp",
                "dist/x",
                "--tsa",
                "http://127.0.0.1:9/",
                "--min",
            ],
            "",
        ),
        (&["release", "verify", "dist/x", "--min-timestamps"], ""),
        (
            &[
                "timestamp",
                "treaties/AURORA-AKASH-001.json.sig",
                "--tsa",
                "http://127.0.0.1:9/",
                "--timeout",
            ],
            "",
        ),
        (
            &[
                "timestamp",
                "treaties/AURORA-AKASH-001.json.sig",
                "--tsa",
                "http://127.0.0.1:9/",
                "--retries",
            ],
            "",
        ),
        (
            &[
                "new",
                "treaty",
                "AURORA-X-001",
                "--provider",
                "x",
                "--region",
                "us-east",
                "--days",
            ],
            "",
        ),
        (
            &[
                "init",
                "../n",
                "--root-key",
                "demo-keys/root-1.pub.json",
                "--threshold",
            ],
            "",
        ),
        (&["audit", "prove"], ""),
        (&["verify", "--at"], "-01-01T00:00:00Z"),
    ];
    let extremes = prop_oneof![
        Just("0".to_owned()),
        Just("1".to_owned()),
        Just("-1".to_owned()),
        Just(u64::MAX.to_string()),
        Just(i64::MIN.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("99999999999999999999999999".to_owned()),
        Just("1e308".to_owned()),
        Just("NaN".to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 6,
        failure_persistence: None,
        ..Default::default()
    });
    for (args, suffix) in flags {
        runner
            .run(&extremes, |v| {
                let value = format!("{v}{suffix}");
                let out = g
                    .treaty()
                    .args(*args)
                    .arg(&value)
                    .timeout(std::time::Duration::from_secs(60))
                    .output()
                    .unwrap();
                let c = out.status.code();
                prop_assert!(
                    matches!(c, Some(0..=2)),
                    "{args:?} {value}: exit {c:?}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Ok(())
            })
            .unwrap();
    }
    // An approved heartbeat that expires in year 9999: the agent's skew arithmetic saturates.
    let (c, e) =
        stderr(
            g.treaty()
                .args(["heartbeat", "--key", "demo-keys/ci-1.key", "--ttl", "3653d"]),
        );
    assert!(matches!(c, 0 | 1), "{e}");
}

// ---- never lose a signature or leave litter -------------------------------------------------

/// A conflicted envelope (two branches signed one file) is refused, byte for byte untouched;
/// the merge driver installed by `hooks install` unions the valid signatures instead.
#[test]
fn sign_never_overwrites_an_unreadable_envelope_and_the_merge_driver_unions_signatures() {
    let g = Gov::demo();
    let rel = "treaties/AURORA-AKASH-001.json";
    // A new version needs fresh signatures: council-1 signs it on main and commits.
    let mut v = g.json(rel);
    v["version"] = 2.into();
    v["quotas"]["concurrent_jobs"] = 70.into();
    g.write_json(rel, &v);
    g.sign(rel, &["council-1"]);
    g.commit("v2, council-1 signs");
    g.git(&["branch", "b"]);
    // council-2 signs on main, akash-1 on b: both change the .sig.
    g.sign(rel, &["council-2"]);
    g.commit("council-2 signs");
    g.git(&["switch", "-q", "b"]);
    g.sign(rel, &["akash-1"]);
    g.commit("akash-1 signs");
    g.git(&["switch", "-q", "main"]);
    // Without the driver git merges the envelope as text: whether its hunks collide depends on
    // where the key ids sort. A collision leaves conflict markers — written here as git writes
    // them — and sign refuses to write over the file.
    let ours = String::from_utf8(g.read(&format!("{rel}.sig"))).unwrap();
    let theirs = g.git(&["show", &format!("b:{rel}.sig")]);
    let conflicted = format!("<<<<<<< HEAD\n{ours}=======\n{theirs}>>>>>>> b\n");
    g.write(&format!("{rel}.sig"), &conflicted);
    let (c, e) = stderr(
        g.treaty()
            .args(["sign", rel, "--key", "demo-keys/council-3.key"]),
    );
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("unresolved git merge conflict"), "{e}");
    assert_eq!(
        g.read(&format!("{rel}.sig")),
        conflicted.as_bytes(),
        "the envelope was changed"
    );
    g.git(&["checkout", "--", &format!("{rel}.sig")]);
    // With the driver: the merge is clean and the file is approved (council 2/2, akash 1/1).
    g.treaty().args(["hooks", "install"]).assert().success();
    g.git(&["merge", "-q", "--no-edit", "b"]);
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 0, "{r}");
}

#[test]
fn the_merge_driver_drops_signatures_that_do_not_verify_and_conflicts_on_different_statements() {
    let g = Gov::demo();
    let rel = "treaties/AURORA-AKASH-001.json.sig";
    let ours = g.path(rel);
    let theirs = g.path("../theirs.sig");
    let base = g.path("../base.sig");
    std::fs::copy(&ours, &base).unwrap();
    // Theirs: the same statement with a forged entry under a real member's key id.
    let mut e = g.envelope_of("treaties/AURORA-AKASH-001.json");
    let honest_count = e.signatures.len();
    let mut forged = e.signatures[0].clone();
    forged.sig[0] ^= 1;
    e.signatures.retain(|s| s.keyid != forged.keyid);
    e.signatures.push(forged);
    std::fs::write(&theirs, e.to_bytes()).unwrap();
    let (c, err) = stderr(
        g.treaty()
            .args(["merge-sig"])
            .arg(&base)
            .arg(&ours)
            .arg(&theirs)
            .arg(rel),
    );
    assert_eq!(c, 0, "{err}");
    let merged = treaty::dsse::Envelope::parse(&std::fs::read(&ours).unwrap()).unwrap();
    assert_eq!(merged.signatures.len(), honest_count, "{err}");
    // A different statement on the other side is a conflict, ours untouched.
    let before = std::fs::read(&ours).unwrap();
    let other = g.envelope_of("treaties/AURORA-IONET-001.json");
    std::fs::write(&theirs, other.to_bytes()).unwrap();
    let (c, err) = stderr(
        g.treaty()
            .args(["merge-sig"])
            .arg(&base)
            .arg(&ours)
            .arg(&theirs)
            .arg(rel),
    );
    assert_eq!(c, 1, "{err}");
    assert!(err.contains("different statements"), "{err}");
    assert_eq!(std::fs::read(&ours).unwrap(), before);
}

#[test]
fn sign_as_uses_the_files_repository_not_the_current_directorys() {
    let g = Gov::demo();
    let other = Gov::demo(); // another federation: its council keys differ
    let copy = g.path("../copy.json");
    std::fs::copy(g.path("treaties/AURORA-AKASH-001.json"), &copy).unwrap();
    // Run from the other repository: --as must not read its trust files.
    let (c, e) = stderr(
        other
            .treaty()
            .args(["sign"])
            .arg(g.path("treaties/AURORA-AKASH-001.json"))
            .args(["--as", "treaties/AURORA-AKASH-001.json", "--key"])
            .arg(g.path("demo-keys/council-3.key")),
    );
    assert_eq!(c, 0, "{e}");
    // A copy outside any repository needs --repo.
    let (c, e) = stderr(
        other
            .treaty()
            .args(["sign"])
            .arg(&copy)
            .args(["--as", "treaties/AURORA-AKASH-001.json", "--key"])
            .arg(g.path("demo-keys/council-3.key")),
    );
    assert_eq!(c, 2, "{e}");
    assert!(e.contains("--repo"), "{e}");
}

#[test]
fn lifecycle_changes_that_change_nothing_write_nothing() {
    let g = Gov::demo();
    let before = g.read("keys/root.json");
    let (c, e) = stderr(g.treaty().args([
        "delegate",
        "treaties/AURORA-SALAD-*",
        "--groups",
        "council,salad",
        "--name",
        "treaties-salad",
    ]));
    assert_eq!(c, 0, "{e}");
    assert!(e.contains("nothing to change"), "{e}");
    assert_eq!(g.read("keys/root.json"), before);
    assert_eq!(g.git(&["status", "--porcelain"]), "");
    // Honest twin: a real change writes a new root version.
    g.treaty()
        .args(["delegate", "treaties/AURORA-SALAD-*", "--groups", "council"])
        .assert()
        .success();
    assert_ne!(g.read("keys/root.json"), before);
}

#[test]
fn revoking_a_key_nobody_holds_is_refused() {
    let g = Gov::demo();
    let (c, e) =
        stderr(
            g.treaty()
                .args(["key", "revoke", &"ab".repeat(32), "--reason", "compromised"]),
        );
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("belongs to no member"), "{e}");
    // Honest twin: council-3's key is revoked.
    let out = g
        .treaty()
        .args([
            "key",
            "show",
            "demo-keys/council-3.pub.json",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kid = v["ed25519_key_id"].as_str().unwrap();
    g.treaty()
        .args(["key", "revoke", kid, "--reason", "compromised"])
        .assert()
        .success();
}

/// A full disk (here: a file-size limit, the same EFBIG/ENOSPC path) leaves no temporary files
/// and no 0-byte key, and the retry succeeds.
#[test]
fn a_full_disk_leaves_no_litter() {
    let g = Gov::demo();
    let limited = |args: &str| full_disk(&g, args);
    let mut v = g.json("treaties/AURORA-AKASH-001.json");
    v["version"] = 2.into();
    g.write_json("treaties/AURORA-AKASH-001.json", &v);
    let out = limited("sign treaties/AURORA-AKASH-001.json --key demo-keys/council-1.key");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = limited("key gen --id dana --out keys-out");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let litter = g.git(&[
        "status",
        "--porcelain",
        "--ignored",
        "--untracked-files=all",
    ]);
    for l in litter.lines() {
        assert!(
            l.ends_with("AURORA-AKASH-001.json") || l.contains("demo-keys/"),
            "litter: {l}\n{litter}"
        );
    }
    assert!(
        !g.path("keys-out/dana.key").exists(),
        "a 0-byte key blocks the retry"
    );
    // The retries, without the limit, succeed.
    g.treaty()
        .args([
            "sign",
            "treaties/AURORA-AKASH-001.json",
            "--key",
            "demo-keys/council-1.key",
        ])
        .assert()
        .success();
    g.treaty()
        .env("TREATY_PASSPHRASE", "pw")
        .args(["key", "gen", "--id", "dana", "--out", "keys-out"])
        .assert()
        .success();
    g.treaty().args(["verify", "--worktree"]).assert().code(1);
}

// ---- the operator's daily questions ---------------------------------------------------------

#[test]
fn status_pending_lists_what_a_member_could_sign_and_sign_pending_asks_per_file() {
    let g = Gov::demo();
    // Nothing pending on the approved demo.
    let (c, e) =
        stderr(
            g.treaty()
                .args(["status", "--pending", "--key", "demo-keys/council-1.key"]),
        );
    assert_eq!(c, 0, "{e}");
    assert!(e.contains("nothing awaits"), "{e}");
    for rel in [
        "treaties/AURORA-AKASH-001.json",
        "treaties/AURORA-IONET-001.json",
    ] {
        let mut v = g.json(rel);
        v["version"] = 2.into();
        g.write_json(rel, &v);
    }
    // A file blocked by something no signature fixes is not offered.
    let mut bad = g.json("treaties/AURORA-FLUX-001.json");
    bad["regions"] = serde_json::json!([]);
    g.write_json("treaties/AURORA-FLUX-001.json", &bad);
    let out = g
        .treaty()
        .args([
            "status",
            "--pending",
            "--key",
            "demo-keys/council-1.key",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = v["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "treaties/AURORA-AKASH-001.json",
            "treaties/AURORA-IONET-001.json"
        ]
    );
    // akash-1 only has AKASH pending.
    let out = g
        .treaty()
        .args([
            "status",
            "--pending",
            "--member",
            "akash-1",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pending"].as_array().unwrap().len(), 1);
    // sign --pending: the diff is shown, and only the file answered "y" is signed.
    let out = g
        .treaty()
        .args(["sign", "--pending", "--key", "demo-keys/council-1.key"])
        .write_stdin("y\nn\n")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("-  \"version\": 1,") && text.contains("+  \"version\": 2,"),
        "{text}"
    );
    assert!(text.contains("signed 1, declined 1"), "{text}");
    let out = g
        .treaty()
        .args([
            "status",
            "--pending",
            "--key",
            "demo-keys/council-1.key",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = v["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["treaties/AURORA-IONET-001.json"], "{v}");
    // No answers (EOF) signs nothing.
    let out = g
        .treaty()
        .args(["sign", "--pending", "--key", "demo-keys/council-2.key"])
        .write_stdin("")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("signed 0"));
}

/// `status` says "met" only on approved files.
#[test]
fn status_never_says_met_on_a_file_that_is_not_approved() {
    let g = Gov::demo();
    let mut v = g.json("treaties/AURORA-AKASH-001.json");
    v["regions"] = serde_json::json!([]);
    g.write_json("treaties/AURORA-AKASH-001.json", &v);
    let out = g.treaty().args(["status", "--worktree"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let block: String = text
        .split("treaties/AURORA-AKASH-001.json")
        .nth(1)
        .unwrap()
        .lines()
        .take(3)
        .collect();
    assert!(!block.contains(" met "), "{block}");
    assert!(block.contains("NOT approved"), "{block}");
}

/// docs/model.md embeds this repository's trust map; the command and the doc agree.
#[test]
fn the_trust_map_in_the_docs_is_the_commands_output() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = treaty_in(src)
        .args(["trust", "show", "--format", "mermaid"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mermaid = String::from_utf8(out.stdout).unwrap();
    let doc = std::fs::read_to_string(src.join("docs/model.md")).unwrap();
    assert!(
        doc.contains(&format!("```mermaid\n{mermaid}```\n")),
        "docs/model.md's mermaid block differs from `treaty trust show --format mermaid`; paste the command's output"
    );
    // Who approves one file.
    let out = treaty_in(src)
        .args([
            "trust",
            "show",
            "treaties/AURORA-AKASH-001.json",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let groups: Vec<&str> = v["who_approves"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["council", "akash"]);
    let (c, _) = stderr(treaty_in(src).args(["trust", "show", "elsewhere/x.json"]));
    assert_eq!(c, 1);
    for f in ["dot", "table", "json"] {
        treaty_in(src)
            .args(["trust", "show", "--format", f])
            .assert()
            .success();
    }
}

#[test]
fn global_flags_work_on_every_command() {
    let g = Gov::demo();
    let parent = g.path("..");
    // -C DIR, like git.
    treaty_in(&parent)
        .args(["-C", "gov", "verify"])
        .assert()
        .code(0);
    treaty_in(&parent)
        .args(["verify", "-C", "gov"])
        .assert()
        .code(0);
    // --quiet: an approved state prints nothing; a finding still prints.
    let out = g.treaty().args(["verify", "--quiet"]).output().unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    g.write("treaties/AURORA-AKASH-001.json", "{}\n");
    let out = g
        .treaty()
        .args(["-q", "verify", "--worktree"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("error["), "{text}");
    assert!(!text.contains(": ok"), "{text}");
    // --color always / never, whatever NO_COLOR says.
    let out = g
        .treaty()
        .args(["--color", "always", "verify", "--worktree"])
        .output()
        .unwrap();
    assert!(out.stdout.contains(&0x1b));
    let out = g
        .treaty()
        .env_remove("NO_COLOR")
        .args(["--color", "never", "verify", "--worktree"])
        .output()
        .unwrap();
    assert!(!out.stdout.contains(&0x1b));
    // --version names the commit and the features.
    let out = g.treaty().arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.contains("commit: ") && v.contains("features: "), "{v}");
}

/// An OS error is said once, naming the file.
#[test]
fn os_errors_are_printed_once_naming_the_file() {
    let g = Gov::demo();
    let (c, e) = stderr(
        g.treaty()
            .args(["release", "verify", "dist/nothing", "--integrity-only"]),
    );
    assert_eq!(c, 2, "{e}");
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    assert!(e.contains("dist/nothing"), "{e}");
}

#[test]
fn a_public_key_where_a_private_one_is_needed_says_what_to_pass() {
    let g = Gov::demo();
    let (c, e) = stderr(g.treaty().args([
        "sign",
        "treaties/AURORA-AKASH-001.json",
        "--key",
        "demo-keys/council-1.pub.json",
    ]));
    assert_eq!(c, 2, "{e}");
    assert!(
        e.contains("this is a public key") && e.contains("council-1.key"),
        "{e}"
    );
}

#[test]
fn new_treaty_writes_a_schema_valid_draft_and_never_overwrites() {
    let g = Gov::demo();
    g.treaty()
        .args([
            "new",
            "treaty",
            "AURORA-AKASH-002",
            "--provider",
            "akash",
            "--region",
            "us-east",
        ])
        .assert()
        .success();
    g.treaty()
        .args(["validate", "treaties/AURORA-AKASH-002.json"])
        .assert()
        .code(0);
    assert_eq!(g.json("treaties/AURORA-AKASH-002.json")["status"], "draft");
    let (c, _) = stderr(g.treaty().args([
        "new",
        "treaty",
        "AURORA-AKASH-002",
        "--provider",
        "akash",
        "--region",
        "us-east",
    ]));
    assert_eq!(c, 2);
    let (c, _) = stderr(g.treaty().args([
        "new",
        "treaty",
        "bad id",
        "--provider",
        "akash",
        "--region",
        "us-east",
    ]));
    assert_eq!(c, 2);
    // The id names the provider: an Akash id with a Render party is refused.
    let (c, e) = stderr(g.treaty().args([
        "new",
        "treaty",
        "AURORA-AKASH-003",
        "--provider",
        "render",
        "--region",
        "us-east",
    ]));
    assert_eq!(c, 2, "{e}");
    assert!(!g.path("treaties/AURORA-AKASH-003.json").exists());
}

#[test]
fn man_pages_and_completions_are_generated() {
    let g = Gov::demo();
    let out_dir = g.path("../man");
    g.treaty()
        .args(["man", "--out"])
        .arg(&out_dir)
        .assert()
        .success();
    assert!(out_dir.join("treaty.1").exists());
    assert!(out_dir.join("treaty-verify.1").exists());
    let out = g.treaty().args(["completions", "bash"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("treaty"));
}

// ---- regressions from the red team's second pass (each class, with its honest twin) --------

/// A new expiry would drop the others' valid signatures: refused without --restart; the same
/// instant spelled another way is the same statement.
#[test]
fn a_new_expiry_never_drops_valid_signatures_in_silence() {
    let g = Gov::demo();
    let rel = "treaties/AURORA-AKASH-001.json";
    let before = g.read(&format!("{rel}.sig"));
    let (c, e) = stderr(g.treaty().args([
        "sign",
        rel,
        "--key",
        "demo-keys/council-3.key",
        "--expires",
        "2030-01-01T00:00:00Z",
    ]));
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("--restart"), "{e}");
    assert_eq!(g.read(&format!("{rel}.sig")), before);
    // With --restart the first signer starts the new approval; the next joins it with the same
    // instant written another way, and keeps the first signer's entries.
    g.treaty()
        .args([
            "sign",
            rel,
            "--key",
            "demo-keys/council-1.key",
            "--expires",
            "2030-01-01T00:00:00Z",
            "--restart",
        ])
        .assert()
        .success();
    let (c, e) = stderr(g.treaty().args([
        "sign",
        rel,
        "--key",
        "demo-keys/council-2.key",
        "--expires",
        "2030-01-01T01:00:00+01:00",
    ]));
    assert_eq!(c, 0, "{e}");
    assert!(e.contains("kept 2 signature entries"), "{e}");
    g.sign(rel, &["akash-1"]);
    g.treaty().args(["verify", "--worktree"]).assert().code(0);
}

#[test]
fn an_audit_ref_that_only_looks_like_a_log_is_refused() {
    let g = Gov::demo();
    let empty = g.git(&["hash-object", "-w", "/dev/null"]);
    let empty = empty.trim();
    let mktree = |spec: &str| {
        let out = std::process::Command::new("git")
            .args(["mktree"])
            .current_dir(&g.dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(spec.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let junk = mktree(&format!("100644 blob {empty}\tjunk\n"));
    for spec in [
        format!("100644 blob {empty}\ttile\n"),
        format!("040000 tree {junk}\ttile\n"),
        format!("120000 blob {empty}\ttile\n"),
    ] {
        let t = mktree(&spec);
        let c = g.git(&["commit-tree", &t, "-m", "not a log"]);
        g.git(&["update-ref", "refs/treaty/audit", c.trim()]);
        for args in [
            vec!["audit", "verify"],
            vec!["audit", "checkpoint", "--key", "demo-keys/ci-1.key"],
            vec![
                "gate",
                "--base",
                "HEAD",
                "--head",
                "HEAD",
                "--allow-pending",
            ],
        ] {
            let (code, e) = stderr(g.treaty().args(&args));
            assert_eq!(code, 2, "{spec:?} {args:?}: {e}");
        }
    }
    // Honest: no ref is an empty log, and a checkpoint makes a real one.
    g.git(&["update-ref", "-d", "refs/treaty/audit"]);
    g.treaty()
        .args(["audit", "checkpoint", "--key", "demo-keys/ci-1.key"])
        .assert()
        .success();
    g.treaty().args(["audit", "verify"]).assert().code(0);
}

#[test]
fn status_pending_says_when_no_signature_can_help() {
    let g = Gov::demo();
    // An expired root: only a root update helps.
    let (c, e) = stderr(
        g.treaty()
            .args(["status", "--pending", "--at", "2040-01-01T00:00:00Z"]),
    );
    assert_eq!(c, 1, "{e}");
    assert!(!e.contains("nothing awaits"), "{e}");
    assert!(e.contains("root"), "{e}");
    // A malformed root.
    g.write("keys/root.json", "[]\n");
    let (c, e) = stderr(g.treaty().args(["status", "--pending"]));
    assert_eq!(c, 1, "{e}");
    assert!(!e.contains("nothing awaits"), "{e}");
}

#[test]
fn validate_refuses_a_repository_without_a_root_and_never_follows_a_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("r");
    std::fs::create_dir_all(&r).unwrap();
    std::process::Command::new("git")
        .args(["init", "-q"])
        .arg(&r)
        .status()
        .unwrap();
    std::fs::write(r.join("f.json"), "{}").unwrap();
    assert_eq!(code(treaty_in(&r).arg("validate")), 2);
    let g = Gov::demo();
    std::os::unix::fs::symlink(
        "AURORA-AKASH-001.json",
        g.path("treaties/AURORA-AKASH-002.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../policies", g.path("treaties/pl")).unwrap();
    for p in ["treaties/AURORA-AKASH-002.json", "treaties/pl/default.json"] {
        let (c, e) = stderr(g.treaty().args(["validate", p]));
        assert_eq!(c, 1, "{p}: {e}");
        assert!(e.contains("symlink"), "{p}: {e}");
    }
    for p in ["treaties", "."] {
        assert_eq!(code(g.treaty().args(["validate", p])), 2, "{p}");
    }
    // Honest twin: the real file.
    g.treaty()
        .args(["validate", "treaties/AURORA-AKASH-001.json"])
        .assert()
        .code(0);
}

#[test]
fn sign_never_reads_its_envelope_through_a_symlink_or_from_a_fifo() {
    let g = Gov::demo();
    let rel = "treaties/AURORA-AKASH-001.json";
    let sig = g.path(&format!("{rel}.sig"));
    let outside = g.path("../outside.sig");
    std::fs::rename(&sig, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &sig).unwrap();
    let (c, e) = stderr(
        g.treaty()
            .args(["sign", rel, "--key", "demo-keys/council-3.key"]),
    );
    assert_eq!(c, 1, "{e}");
    assert!(
        std::fs::symlink_metadata(&sig)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    std::fs::remove_file(&sig).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(&sig)
        .status()
        .unwrap();
    assert!(st.success());
    let out = g
        .treaty()
        .args(["sign", rel, "--key", "demo-keys/council-3.key"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Honest twin.
    std::fs::remove_file(&sig).unwrap();
    std::fs::rename(&outside, &sig).unwrap();
    g.treaty()
        .args(["sign", rel, "--key", "demo-keys/council-3.key"])
        .assert()
        .success();
}

#[test]
fn a_root_update_is_all_or_nothing() {
    let g = Gov::demo();
    let root_before = g.read("keys/root.json");
    std::fs::create_dir(g.path("keys/roots/2.json")).unwrap();
    let (c, e) = stderr(
        g.treaty()
            .args(["root", "rotate", "--expires", "2035-01-01T00:00:00Z"]),
    );
    assert_eq!(c, 2, "{e}");
    assert_eq!(
        g.read("keys/root.json"),
        root_before,
        "keys/root.json was rewritten"
    );
    assert!(
        g.path("keys/root.json.sig").exists(),
        "the root's approval was dropped"
    );
    std::fs::remove_dir(g.path("keys/roots/2.json")).unwrap();
    assert_eq!(
        g.git(&["status", "--porcelain", "--untracked-files=all"]),
        ""
    );
    // The retry succeeds.
    g.treaty()
        .args(["root", "rotate", "--expires", "2035-01-01T00:00:00Z"])
        .assert()
        .success();
}

#[test]
fn heartbeat_release_and_init_leave_nothing_half_written() {
    let g = Gov::demo();
    let limited = |args: &str| full_disk(&g, args);
    let out = limited("heartbeat --key demo-keys/ci-1.key --ttl 24h");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        g.git(&["status", "--porcelain"]),
        "",
        "heartbeat left a half-written state"
    );
    let out = limited("release bundle --rev HEAD --out ../rel --name r");
    assert_ne!(out.status.code(), Some(0));
    let litter: Vec<_> = std::fs::read_dir(g.path("../rel"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        litter.iter().all(|n| !n.to_string_lossy().contains("tmp")),
        "{litter:?}"
    );
    let out = limited("init ../fresh --demo");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        !g.path("../fresh").exists(),
        "init left a partial repository"
    );
    // Honest twins.
    g.treaty()
        .args(["heartbeat", "--key", "demo-keys/ci-1.key", "--ttl", "24h"])
        .assert()
        .success();
    g.treaty()
        .args(["init", "../fresh", "--demo"])
        .assert()
        .success();
}

#[test]
fn out_of_range_arguments_are_usage_errors() {
    let g = Gov::demo();
    assert_eq!(
        code(g.treaty().args([
            "delegate",
            "x/**",
            "--groups",
            "council",
            "--position",
            "18446744073709551615"
        ])),
        2
    );
    assert_eq!(
        code(
            g.treaty()
                .args(["init", "../x", "--demo", "--threshold", "3"])
        ),
        2
    );
    assert_eq!(
        code(g.treaty().args(["audit", "prove", "18446744073709551615"])),
        2
    );
    assert_eq!(
        code(
            g.treaty()
                .args(["audit", "consistency", "0", "18446744073709551615"])
        ),
        2
    );
    g.treaty()
        .args(["delegate", "x/**", "--groups", "council", "--position", "1"])
        .assert()
        .success();
}
