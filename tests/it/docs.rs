//! The docs' commands are tests (issue 14): every shell block (```sh, ```bash, ```shell) of
//! README.md and docs/*.md runs as written against the demo federation, so the docs cannot
//! drift from the tool. `tests/docs/commands.toml` is the documented substitution map (what
//! cannot run here: remote authorities, git hosts, system directories) and the allow-list of
//! blocks that are not run, each with its reason; a block that is neither run nor listed fails.
//!
//! One sandbox per page: a fresh HOME and working directory, the built binaries first on PATH,
//! `TREATY_PASSPHRASE=demo-passphrase`, `NO_COLOR=1`, git identities; `TSA_A`, `TSA_B` — two
//! RFC 3161 authorities on loopback (`openssl ts -reply`) — and `TSA_CA` (both roots in one PEM);
//! `TREATY_SRC` (this checkout). The page's prelude runs first, then every block not skipped,
//! substituted, in document order, as one `set -euo pipefail` bash script (so `cd` and
//! variables carry from block to block as they do for a reader). A line ending in `# exit N`
//! must exit with status N.

use std::path::{Path, PathBuf};

const RUNNERS: [&str; 3] = ["sh", "bash", "shell"];

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    files: std::collections::BTreeMap<String, Page>,
    #[serde(default)]
    substitute: Vec<Substitute>,
    #[serde(default)]
    skip: Vec<Skip>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    prelude: String,
    reason: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Substitute {
    from: String,
    to: String,
    reason: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Skip {
    file: String,
    block: String,
    reason: String,
}

/// A fenced block: the line of its opening fence (1-based), its info word, its text.
struct Block {
    line: usize,
    info: String,
    text: String,
}

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fenced blocks of a Markdown page (``` or ~~~, possibly indented inside a list item).
fn blocks(rel: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.split('\n').collect();
    let fence_of = |l: &str| {
        let t = l.trim_start_matches([' ', '\t']);
        let ch = t.chars().next()?;
        if ch != '`' && ch != '~' {
            return None;
        }
        let n = t.chars().take_while(|&c| c == ch).count();
        (n >= 3).then(|| (l.len() - t.len(), ch, n, t[n..].trim().to_owned()))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some((indent, ch, n, info)) = fence_of(lines[i]) else {
            i += 1;
            continue;
        };
        let start = i + 1;
        let mut body = Vec::new();
        i += 1;
        loop {
            assert!(i < lines.len(), "{rel}:{start}: unclosed fence");
            if let Some((_, c2, n2, rest)) = fence_of(lines[i]) {
                if c2 == ch && n2 >= n && rest.is_empty() {
                    break;
                }
            }
            let l = lines[i];
            let stripped = if l.len() >= indent && l[..indent].trim().is_empty() {
                &l[indent..]
            } else {
                l.trim_start()
            };
            body.push(stripped);
            i += 1;
        }
        i += 1;
        out.push(Block {
            line: start,
            info: info.split_whitespace().next().unwrap_or("").to_owned(),
            text: body.join("\n") + "\n",
        });
    }
    out
}

/// `CMD   # exit N` → run CMD and require status N (no subshell: `set -e` still applies inside).
fn rewrite_exits(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let expect = line.rfind("# exit ").and_then(|at| {
            let code = line[at + 7..].trim();
            (!code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()))
                .then(|| (line[..at].trim_end(), code))
        });
        match expect {
            Some((cmd, code)) => out.push(format!(
                "if {cmd}\nthen __s=0; else __s=$?; fi; [ \"$__s\" = {code} ] || {{ echo \"::fail expected exit {code}, got $__s: {}\" >&2; exit 1; }}",
                cmd.replace(['"', '$', '`', '\\'], "")
            )),
            None => out.push(line.to_owned()),
        }
    }
    out.join("\n")
}

fn config() -> Config {
    let p = src().join("tests/docs/commands.toml");
    let c: Config = toml::from_str(&std::fs::read_to_string(&p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    for (f, page) in &c.files {
        assert!(
            !page.reason.trim().is_empty(),
            "{f}: a prelude needs its reason"
        );
    }
    for s in &c.substitute {
        assert!(
            !s.reason.trim().is_empty(),
            "substitute {:?} needs its reason",
            s.from
        );
        assert!(!s.to.is_empty());
    }
    for s in &c.skip {
        assert!(
            !s.reason.trim().is_empty(),
            "{}: skip {:?} needs its reason",
            s.file,
            s.block
        );
    }
    c
}

/// The pages whose commands are tests.
fn pages() -> Vec<String> {
    let mut v = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(src().join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    v.extend(docs);
    v
}

/// The script for one page and how many blocks it runs; panics on a skip entry that does not
/// name exactly one block (a stale allow-list entry is drift too).
fn script(rel: &str, cfg: &Config) -> (String, usize) {
    let text = std::fs::read_to_string(src().join(rel)).unwrap();
    let runnable: Vec<Block> = blocks(rel, &text)
        .into_iter()
        .filter(|b| RUNNERS.contains(&b.info.as_str()))
        .collect();
    let skips: Vec<&Skip> = cfg.skip.iter().filter(|s| s.file == rel).collect();
    for s in &skips {
        let n = runnable
            .iter()
            .filter(|b| b.text.contains(&s.block))
            .count();
        assert_eq!(
            n, 1,
            "{rel}: skip {:?} matches {n} blocks, not one",
            s.block
        );
    }
    let mut parts = vec!["set -euo pipefail".to_owned()];
    if let Some(p) = cfg.files.get(rel) {
        parts.push(format!("echo \"::prelude {rel}\""));
        parts.push(p.prelude.clone());
    }
    let mut ran = 0;
    for b in &runnable {
        if skips.iter().any(|s| b.text.contains(&s.block)) {
            continue;
        }
        let mut t = b.text.clone();
        for s in &cfg.substitute {
            t = t.replace(&s.from, &s.to);
        }
        parts.push(format!("echo \"::block {rel}:{}\"", b.line));
        parts.push(rewrite_exits(&t));
        ran += 1;
    }
    (parts.join("\n") + "\n", ran)
}

/// The directory holding the built `treaty` and `treaty-agent`.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_treaty"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run_page(rel: &str) {
    let cfg = config();
    let (script, ran) = script(rel, &cfg);
    if ran == 0 {
        eprintln!("{rel}: no shell blocks to run");
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("treaty-docs-")
        .tempdir()
        .unwrap();
    let (home, work) = (tmp.path().join("home"), tmp.path().join("work"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let (a, b) = (
        crate::tsa::Ca::new(tmp.path(), "tsa-a", 3650),
        crate::tsa::Ca::new(tmp.path(), "tsa-b", 3650),
    );
    let roots = tmp.path().join("tsa-roots.pem");
    std::fs::write(&roots, a.root_pem() + &b.root_pem()).unwrap();
    let (ta, tb) = (
        crate::tsa::Tsa::start(&a, crate::tsa::Mode::Honest),
        crate::tsa::Tsa::start(&b, crate::tsa::Mode::Honest),
    );
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::fs::write(tmp.path().join("script.sh"), &script).unwrap();
    let mut child = std::process::Command::new("timeout")
        .args(["300", "bash"])
        .arg(tmp.path().join("script.sh"))
        .current_dir(&work)
        .env_clear()
        .env("PATH", path)
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .env("TREATY_PASSPHRASE", "demo-passphrase")
        .env("NO_COLOR", "1")
        .env("TREATY_SRC", src())
        .env("TSA_A", &ta.url)
        .env("TSA_B", &tb.url)
        .env("TSA_CA", &roots)
        .env("GIT_AUTHOR_NAME", "Doc Test")
        .env("GIT_AUTHOR_EMAIL", "doc@test.invalid")
        .env("GIT_COMMITTER_NAME", "Doc Test")
        .env("GIT_COMMITTER_EMAIL", "doc@test.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // stderr is read on a thread so a chatty page cannot fill one pipe and stall.
    let mut err = child.stderr.take().unwrap();
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let status = child.wait().unwrap();
    let err = err_t.join().unwrap();
    // gpg (docs/release.md) leaves an agent running for the sandbox's HOME.
    let _ = std::process::Command::new("gpgconf")
        .args(["--kill", "all"])
        .env("HOME", &home)
        .output();
    let tail = |s: &str| {
        s.chars()
            .rev()
            .take(6000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
    };
    assert!(
        status.success(),
        "{rel}: its commands failed ({status}); the last block marker says which.\n--- stdout\n{}\n--- stderr\n{}",
        tail(&out),
        tail(&err)
    );
}

/// Every runnable block of every page is run or on the allow-list with its reason; every
/// allow-list and substitution entry still matches something (no stale entries).
#[test]
fn every_shell_block_is_run_or_allow_listed_with_a_reason() {
    let cfg = config();
    let pages = pages();
    for f in cfg.files.keys() {
        assert!(
            pages.contains(f),
            "commands.toml names {f}, which is not a page"
        );
    }
    for s in &cfg.skip {
        assert!(
            pages.contains(&s.file),
            "skip names {}, which is not a page",
            s.file
        );
    }
    let all: String = pages
        .iter()
        .map(|p| std::fs::read_to_string(src().join(p)).unwrap())
        .collect();
    for s in &cfg.substitute {
        assert!(
            all.contains(&s.from),
            "substitute {:?} matches nothing",
            s.from
        );
    }
    let mut total = 0;
    let mut runnable = Vec::new();
    for p in &pages {
        let (_, ran) = script(p, &cfg);
        total += ran;
        if ran > 0 {
            runnable.push(p.clone());
        }
    }
    assert!(total >= 20, "only {total} blocks run");
    // Every page with runnable blocks has a test below (a new page needs one).
    let tested = [
        "README.md",
        "docs/agent.md",
        "docs/audit.md",
        "docs/bootstrap.md",
        "docs/gates.md",
        "docs/law.md",
        "docs/model.md",
        "docs/operations.md",
        "docs/release.md",
        "docs/security.md",
        "docs/spec.md",
    ];
    for p in &runnable {
        assert!(
            tested.contains(&p.as_str()),
            "{p} has no doc test: add one to tests/it/docs.rs"
        );
    }
}

#[test]
fn fences_and_exit_annotations_are_read_as_the_harness_documents() {
    let b = blocks(
        "x",
        "a\n  ```sh\n  cd gov\n  treaty verify   # exit 1\n  ```\n~~~json\n{}\n~~~\n",
    );
    assert_eq!(b.len(), 2);
    assert_eq!((b[0].line, b[0].info.as_str()), (2, "sh"));
    assert_eq!(b[0].text, "cd gov\ntreaty verify   # exit 1\n");
    let s = rewrite_exits("treaty verify   # exit 1");
    assert!(s.starts_with("if treaty verify\nthen __s=0"), "{s}");
    assert!(s.contains("[ \"$__s\" = 1 ]"), "{s}");
    assert_eq!(
        rewrite_exits("treaty verify  # 0 = ok"),
        "treaty verify  # 0 = ok"
    );
}

#[test]
fn readme_commands_run() {
    run_page("README.md");
}
#[test]
fn agent_md_commands_run() {
    run_page("docs/agent.md");
}
#[test]
fn audit_md_commands_run() {
    run_page("docs/audit.md");
}
#[test]
fn bootstrap_md_commands_run() {
    run_page("docs/bootstrap.md");
}
#[test]
fn gates_md_commands_run() {
    run_page("docs/gates.md");
}
#[test]
fn law_md_commands_run() {
    run_page("docs/law.md");
}

#[test]
fn model_md_commands_run() {
    run_page("docs/model.md");
}
#[test]
fn operations_md_commands_run() {
    run_page("docs/operations.md");
}
#[test]
fn release_md_commands_run() {
    run_page("docs/release.md");
}
#[test]
fn security_md_commands_run() {
    run_page("docs/security.md");
}
#[test]
fn spec_md_commands_run() {
    run_page("docs/spec.md");
}
