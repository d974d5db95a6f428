//! Issue 12 (terminal injection): names and contents nobody approved, a file a user passes, or
//! what a peer answers, cannot put escape sequences or line breaks into what a person reads.
//! For a command of each family, a repository carrying hostile text (file names with ESC, CR
//! and newlines made with git plumbing, unsigned JSON fields, bidi overrides in approved names)
//! must give output with no ESC, no CR, no C1 or bidi control, and no line of the attacker's
//! making, while the hostile text is still shown, escaped. Beside them, the honest twins:
//! normal output stays normal and forced colour still colours.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::common::*;

/// Hostile text that tries to clear the screen and print `fake` on a line of its own, then
/// return the cursor, plus an 8-bit CSI and a right-to-left override.
fn evil(fake: &str) -> String {
    format!("\x1b[2J\x1b[H\n{fake}\r\u{9b}\u{202e}x")
}

/// What [`evil`] looks like once escaped (the part before the C1 and bidi characters).
fn escaped(fake: &str) -> String {
    format!(r"\u{{1b}}[2J\u{{1b}}[H\n{fake}\r\u{{9b}}\u{{202e}}x")
}

/// Commits `path` with `content` through git plumbing (`hash-object`, `update-index
/// --cacheinfo`), so a name with a newline or ESC never has to exist in the work tree.
fn commit_blob(g: &Gov, path: &str, content: &[u8]) {
    let mut child = Command::new("git")
        .args(["hash-object", "-w", "--stdin"])
        .current_dir(&g.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(content).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let sha = String::from_utf8(out.stdout).unwrap();
    g.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("100644,{},{path}", sha.trim()),
    ]);
    g.git(&["commit", "-q", "-m", &evil("result: APPROVED")]);
}

fn run(c: &mut assert_cmd::Command) -> Output {
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Neither stream holds a character that acts on a terminal, and `fake` starts no line but
/// the `honest` number the command prints itself.
fn assert_inert(out: &Output, fake: &str, honest: usize) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let t = text(bytes);
        assert!(!bytes.contains(&0x1b), "{name} holds ESC: {t:?}");
        assert!(!bytes.contains(&b'\r'), "{name} holds CR: {t:?}");
        assert!(
            !t.chars().any(|c| c != '\n' && treaty::text::is_unsafe(c)),
            "{name} holds a control or bidi character: {t:?}"
        );
    }
    let all = text(&out.stdout) + &text(&out.stderr);
    let lines = all
        .lines()
        .filter(|l| l.trim_start().starts_with(fake))
        .count();
    assert_eq!(lines, honest, "lines starting with {fake:?}:\n{all}");
}

/// The hostile text reached the output, escaped (so it was shown, not dropped).
fn assert_shown(out: &Output, fake: &str) {
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains(&escaped(fake)), "{all}");
}

/// A demo federation with a committed file named with [`evil`] under `treaties/` (unsigned,
/// uncovered, an invalid path) whose content carries a TEMP-STUB marker.
fn hostile(fake: &str) -> Gov {
    let g = Gov::demo();
    commit_blob(
        &g,
        &format!("treaties/AURORA-{}.json", evil(fake)),
        b"{\"TEMP-STUB\": 1}\n",
    );
    g
}

#[test]
fn verify_and_status_escape_hostile_file_names() {
    let g = hostile("result: APPROVED");
    for cmd in ["verify", "status"] {
        let out = run(g.treaty().arg(cmd));
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", text(&out.stdout));
        assert_inert(&out, "result: APPROVED", 0);
        assert_shown(&out, "result: APPROVED");
        assert!(text(&out.stdout).contains("result: NOT APPROVED"));
    }
}

#[test]
fn colour_is_kept_and_only_ours_reaches_the_terminal() {
    // Honest: forced colour paints the verdict.
    let g = Gov::demo();
    let out = run(g
        .treaty()
        .arg("verify")
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1"));
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out.stdout);
    assert!(t.contains("result: \x1b[32mAPPROVED\x1b[0m"), "{t:?}");
    // NO_COLOR still wins over CLICOLOR_FORCE.
    let out = run(g.treaty().arg("verify").env("CLICOLOR_FORCE", "1"));
    assert!(!out.stdout.contains(&0x1b));
    // Hostile: every escape sequence left is one of our colours, and the hostile text is
    // shown escaped inside them.
    let g = hostile("result: APPROVED");
    let out = run(g
        .treaty()
        .arg("verify")
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1"));
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out.stdout);
    assert!(t.contains("result: \x1b[31;1mNOT APPROVED\x1b[0m"), "{t:?}");
    let mut rest = t.clone();
    for sgr in ["\x1b[32m", "\x1b[31;1m", "\x1b[33m", "\x1b[2m", "\x1b[0m"] {
        rest = rest.replace(sgr, "");
    }
    assert!(!rest.contains('\x1b'), "{rest:?}");
    assert!(rest.contains(&escaped("result: APPROVED")), "{rest}");
}

#[test]
fn validate_escapes_hostile_names_and_json_keys() {
    let g = Gov::demo();
    let named = g.path(&format!(
        "treaties/AURORA-{}.json",
        evil("validated 2 file(s): all valid")
    ));
    std::fs::write(&named, b"{}").unwrap();
    let mut t = g.json(AKASH);
    t[evil("validated 2 file(s): all valid")] = 1.into();
    g.write_json("treaties/AURORA-AKASH-002.json", &t);
    let out = run(g
        .treaty()
        .arg("validate")
        .arg(&named)
        .arg("treaties/AURORA-AKASH-002.json"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_inert(&out, "validated", 1);
    assert_shown(&out, "validated 2 file(s): all valid");
    // Honest twin.
    let out = run(g.treaty().args(["validate", AKASH]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "validated 1 file(s): all valid\n");
}

#[test]
fn gate_human_and_github_output_escape_hostile_names() {
    let fake = "::notice::result: PASSED";
    let g = hostile(fake);
    let out = run(g
        .treaty()
        .args(["gate", "--base", "HEAD~1", "--head", "HEAD"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_inert(&out, "::notice", 0);
    assert_inert(&out, "result: PASSED", 0);
    assert_shown(&out, fake);
    let summary = g.path("../summary.md");
    let out = run(g
        .treaty()
        .args([
            "gate", "--base", "HEAD~1", "--head", "HEAD", "--format", "github",
        ])
        .env("GITHUB_STEP_SUMMARY", &summary));
    assert_eq!(out.status.code(), Some(1));
    assert_inert(&out, "::notice", 0);
    assert_inert(&out, "result: PASSED", 0);
    let stdout = text(&out.stdout);
    let commands: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert!(!commands.is_empty(), "{stdout}");
    for c in &commands {
        assert!(
            c.starts_with("::error ") || c.starts_with("::warning "),
            "{c}"
        );
        // The hostile name is a `file=` property: its colons are percent-encoded.
        let props = &c[2..c[2..].find("::").unwrap() + 2];
        assert!(!props.contains(':'), "{c}");
    }
    assert!(
        stdout.contains("%3A%3Anotice%3A%3Aresult%3A PASSED"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(!md.contains('\x1b') && !md.contains('\r'), "{md:?}");
    assert!(
        !md.lines()
            .any(|l| l.starts_with("::") || l.starts_with("result")),
        "{md}"
    );
    assert_eq!(md.matches("## treaty gate").count(), 1, "{md}");
    // Honest twin: an approved change passes, with no annotation.
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["version"] = 2.into();
    t["quotas"]["concurrent_jobs"] = 65.into();
    g.write_json(AKASH, &t);
    g.sign(AKASH, &["council-1", "council-3", "akash-2"]);
    g.commit("akash v2");
    let out = run(g.treaty().args([
        "gate", "--base", "HEAD~1", "--head", "HEAD", "--format", "github",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("::"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).lines().any(|l| l == "result: PASSED"));
}

/// An approved treaty whose name carries a right-to-left override (a valid path: only control
/// characters are refused in names), signed by the groups its delegation requires.
fn approved_bidi_name() -> (Gov, String) {
    let g = Gov::demo();
    let rel = "treaties/AURORA-AKASH-\u{202e}900.json".to_owned();
    g.write(&rel, g.read(AKASH));
    g.sign(&rel, &["council-1", "council-3", "akash-2"]);
    g.commit("a treaty with a bidi override in its name");
    assert_approved(&g);
    (g, rel)
}

#[test]
fn emit_escapes_bidi_controls_in_approved_names() {
    let (g, _) = approved_bidi_name();
    let out = run(g
        .treaty()
        .args(["emit", "--to", "HEAD", "--format", "human"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_inert(&out, "result:", 0);
    let t = text(&out.stdout);
    assert!(
        t.contains(r"treaties/AURORA-AKASH-\u{202e}900.json v1"),
        "{t}"
    );
    // JSON lines stay exact: serde escapes only what JSON must, and the name round-trips.
    let out = run(g.treaty().args(["emit", "--to", "HEAD"]));
    let paths: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|c| c["subject"]["path"].as_str().map(str::to_owned))
        .collect();
    assert!(paths
        .iter()
        .any(|p| p == "treaties/AURORA-AKASH-\u{202e}900.json"));
}

#[test]
fn release_seal_and_verify_escape_hostile_signature_files_and_entry_names() {
    let (g, rel) = approved_bidi_name();
    let dist = g.path("../dist");
    g.treaty()
        .args(["release", "bundle", "--name", "fed", "--out"])
        .arg(&dist)
        .assert()
        .success();
    let bundle = dist.join("fed");
    let bundle = bundle.to_str().unwrap();
    for o in ["officer-1", "officer-3"] {
        g.treaty()
            .args([
                "release",
                "sign",
                bundle,
                "--key",
                &format!("demo-keys/{o}.key"),
            ])
            .assert()
            .success();
    }
    std::fs::write(
        dist.join(format!("fed.signatures/{}.json", evil("result: VERIFIED"))),
        b"not an envelope",
    )
    .unwrap();
    let out = run(g.treaty().args(["release", "seal", bundle]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_inert(&out, "result: VERIFIED", 0);
    assert_shown(&out, "result: VERIFIED");
    assert!(text(&out.stdout).contains("not counted"));
    // A manifest edited to disown the bidi-named file: the integrity layer names it, escaped.
    let mpath = dist.join("fed.manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        if f["path"] == rel.as_str() {
            f["sha256"] = "00".repeat(32).into();
        }
    }
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let out = run(g
        .treaty()
        .args(["release", "verify", "--integrity-only", bundle]));
    assert_eq!(out.status.code(), Some(1));
    assert_inert(&out, "result: VERIFIED", 0);
    let t = text(&out.stdout);
    assert!(
        t.contains(r"treaties/AURORA-AKASH-\u{202e}900.json: content differs"),
        "{t}"
    );
    assert!(
        t.contains("result: NOT VERIFIED: the integrity layer failed"),
        "{t}"
    );
}

#[test]
fn audit_show_and_verify_escape_hostile_entries() {
    let g = Gov::demo();
    let e = evil("result: VERIFIED");
    g.treaty()
        .args([
            "audit",
            "append",
            "--kind",
            &e,
            "--subject",
            &e,
            "--verdict",
            &e,
        ])
        .assert()
        .success();
    g.treaty()
        .args(["audit", "checkpoint", "--key", "demo-keys/ci-1.key"])
        .assert()
        .success();
    let out = run(g.treaty().args(["audit", "show"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_inert(&out, "result: VERIFIED", 0);
    assert_shown(&out, "result: VERIFIED");
    assert_eq!(
        text(&out.stdout).lines().count(),
        2,
        "{}",
        text(&out.stdout)
    );
    let out = run(g.treaty().args(["audit", "verify"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_inert(&out, "result: VERIFIED", 1);
}

#[test]
fn key_show_escapes_a_hostile_member_id() {
    let g = Gov::demo();
    let mut m = g.json("keys/groups/akash.json")["members"][0].clone();
    m["id"] = evil("ed25519 key id:   0000").into();
    g.write_json("../member.json", &m);
    let out = run(g.treaty().args(["key", "show", "../member.json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_inert(&out, "ed25519 key id:", 1);
    assert_shown(&out, "ed25519 key id:   0000");
    // Honest twin.
    m["id"] = "akash-9".into();
    g.write_json("../member.json", &m);
    let out = run(g.treaty().args(["key", "show", "../member.json"]));
    assert!(text(&out.stdout).starts_with("member: akash-9\ned25519 key id:   "));
}

#[test]
fn errors_escape_what_they_quote() {
    // A file a user passes, named with control characters: the error quoting it is one line.
    let g = Gov::demo();
    let name = g.path(&format!("../{}", evil("result: APPROVED")));
    std::fs::write(&name, b"{").unwrap();
    let out = run(g.treaty().args(["init", "x", "--root-key"]).arg(&name));
    assert_eq!(out.status.code(), Some(2));
    assert_inert(&out, "result: APPROVED", 0);
    assert_shown(&out, "result: APPROVED");
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn agent_text_logs_escape_refusals_that_quote_the_repository() {
    let fake = "2030-01-01T00:00:00.000000Z  INFO treaty::cli::agent: applied";
    let g = hostile(fake);
    let agent = |g: &Gov| {
        assert_cmd::Command::cargo_bin("treaty-agent")
            .unwrap()
            .args(["--once", "--log-format", "text", "--remote"])
            .arg(&g.dir)
            .arg("--state")
            .arg(g.path("../agent-state"))
            .arg("--spool")
            .arg(g.path("../spool"))
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let out = agent(&g);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_inert(&out, "2030-01-01", 0);
    assert_shown(&out, fake);
    let log = text(&out.stderr);
    assert!(log.contains("refused: unapproved"), "{log}");
    // Every log line is a log line: the refusal, and the finding it quotes, stay on one.
    for l in log.lines() {
        assert!(l.starts_with("20") && l.contains("cli::agent"), "{l:?}");
    }
    // Honest twin: the demo applies, on one line.
    let g = Gov::demo();
    let out = agent(&g);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("applied"),
        "{}",
        text(&out.stderr)
    );
}
