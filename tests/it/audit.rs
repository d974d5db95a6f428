//! The audit log end to end: the gate's decisions and a sealed release land in
//! `refs/treaty/audit`, `treaty audit verify` passes after them, and every tampering fails it
//! (with the entry's index where one is to blame). An outside verifier written from RFC 9162
//! and C2SP tlog-tiles and signed-note (tests/reference/audit.py) agrees on roots and proofs,
//! and rejects a checkpoint not signed by the log group and a tile that differs at any level.

use crate::common::*;
use std::collections::BTreeMap;
use treaty::audit::tiles;

fn ok_out(g: &Gov, args: &[&str]) -> String {
    let out = g.treaty().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "treaty {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn verify(g: &Gov, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = g
        .treaty()
        .args(["audit", "verify", "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr))),
    )
}

fn problems(r: &serde_json::Value) -> String {
    r["problems"].to_string()
}

/// A demo federation whose log holds `n` gate entries (from a JSONL file) and a checkpoint.
fn logged(n: usize) -> Gov {
    let g = Gov::demo();
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{{\"kind\":\"gate.verdict\",\"time\":\"2026-11-22T00:00:00Z\",\"gate\":\"g{i}\",\"status\":\"pass\",\"head\":\"{i:040x}\"}}\n"
            )
        })
        .collect();
    g.write("../entries.jsonl", lines);
    ok_out(&g, &["audit", "append", "--from-jsonl", "../entries.jsonl"]);
    ok_out(&g, &["audit", "checkpoint", "--key", "demo-keys/ci-1.key"]);
    g
}

/// Rewrites the log's tree (files by path) as a new commit on the ref, as an attacker with
/// push access would.
fn rewrite(g: &Gov, f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>)) {
    let repo = git2::Repository::open(&g.dir).unwrap();
    let c = repo
        .find_reference("refs/treaty/audit")
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let tree = c.tree().unwrap();
    let mut files = BTreeMap::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |root, e| {
        if e.kind() == Some(git2::ObjectType::Blob) {
            let b = e.to_object(&repo).unwrap().into_blob().unwrap();
            files.insert(format!("{root}{}", e.name().unwrap()), b.content().to_vec());
        }
        git2::TreeWalkResult::Ok
    })
    .unwrap();
    let before = files.clone();
    f(&mut files);
    let mut upd = git2::build::TreeUpdateBuilder::new();
    for p in before.keys().filter(|p| !files.contains_key(*p)) {
        upd.remove(p.as_str());
    }
    for (p, b) in &files {
        if before.get(p) != Some(b) {
            upd.upsert(p.as_str(), repo.blob(b).unwrap(), git2::FileMode::Blob);
        }
    }
    let t = repo
        .find_tree(upd.create_updated(&repo, &tree).unwrap())
        .unwrap();
    let sig = git2::Signature::now("mallory", "m@example.invalid").unwrap();
    let oid = repo.commit(None, &sig, &sig, "rewrite", &t, &[&c]).unwrap();
    repo.reference("refs/treaty/audit", oid, true, "rewrite")
        .unwrap();
}

fn edit_bundle(
    files: &mut BTreeMap<String, Vec<u8>>,
    path: &str,
    f: impl FnOnce(&mut Vec<Vec<u8>>),
) {
    let mut entries: Vec<Vec<u8>> = tiles::bundle_decode(&files[path])
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    f(&mut entries);
    files.insert(
        path.to_owned(),
        tiles::bundle_encode(entries.iter().map(Vec::as_slice)).unwrap(),
    );
}

#[test]
fn the_gate_and_a_sealed_release_land_in_the_log_and_it_verifies() {
    let g = Gov::demo();
    // An absent log is a valid empty log.
    let (code, r) = verify(&g, &[]);
    assert_eq!((code, r["size"].as_u64()), (0, Some(0)));
    // The gate's decisions, as it wrote them.
    g.write("treaties/NOTE.txt", "x");
    g.commit("an uncovered file");
    g.treaty()
        .args([
            "gate",
            "--base",
            "HEAD~1",
            "--head",
            "HEAD",
            "--audit-out",
            "../gate.jsonl",
        ])
        .assert()
        .code(1);
    ok_out(
        &g,
        &[
            "audit",
            "append",
            "--from-jsonl",
            "../gate.jsonl",
            "--key",
            "demo-keys/ci-1.key",
        ],
    );
    // Unvouched entries do not verify yet.
    let (code, r) = verify(&g, &[]);
    assert_eq!(code, 1);
    assert!(problems(&r).contains("no signed checkpoint"), "{r:#}");
    ok_out(&g, &["audit", "checkpoint", "--key", "demo-keys/ci-1.key"]);
    let first = g.path("../checkpoint-1");
    std::fs::write(&first, g.git(&["show", "refs/treaty/audit:checkpoint"])).unwrap();
    // A release sealed by two officers appends itself.
    g.git(&["reset", "-q", "--hard", "HEAD~1"]);
    let dist = g.path("../dist");
    g.treaty()
        .args(["release", "bundle", "--name", "rel", "--out"])
        .arg(&dist)
        .assert()
        .success();
    let b = dist.join("rel").display().to_string();
    for o in ["officer-1", "officer-2"] {
        ok_out(
            &g,
            &[
                "release",
                "sign",
                &b,
                "--key",
                &format!("demo-keys/{o}.key"),
            ],
        );
    }
    let out = g.treaty().args(["release", "seal", &b]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("logged as audit entry"));
    ok_out(&g, &["audit", "checkpoint", "--key", "demo-keys/ci-1.key"]);
    let (code, r) = verify(&g, &["--from", first.to_str().unwrap()]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["checkpoint"]["signed_by"][0], "ci-1");
    let show: serde_json::Value =
        serde_json::from_str(&ok_out(&g, &["audit", "show", "--format", "json"])).unwrap();
    let kinds: Vec<&str> = show["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"gate.verdict") && kinds.contains(&"gate.result"));
    assert_eq!(kinds.last(), Some(&"release.sealed"));
    let last = show["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["details"]["signed"],
        serde_json::json!(["officer-1", "officer-2"])
    );
    // Entries signed by their actor carry a hybrid signature that verified.
    assert!(show["entries"][0]["signatures"].as_array().unwrap().len() == 2);
    // The checking commands wrote nothing to the branch, index or work tree.
    assert_eq!(g.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_changed_reordered_removed_or_inserted_entry_is_named_by_index() {
    for (label, at) in [
        ("changed", 37usize),
        ("reordered", 100),
        ("removed", 200),
        ("inserted", 5),
    ] {
        let g = logged(300);
        rewrite(&g, |files| {
            edit_bundle(files, "tile/entries/000", |e| match label {
                "changed" => {
                    e[at] = String::from_utf8(e[at].clone())
                        .unwrap()
                        .replace("pass", "fail")
                        .into_bytes()
                }
                "reordered" => e.swap(at, at + 1),
                "removed" => {
                    e.remove(at);
                }
                _ => e.insert(at, e[0].clone()),
            });
        });
        let (code, r) = verify(&g, &[]);
        assert_eq!(code, 1, "{label}");
        let p = &r["problems"][0];
        match label {
            // Removing or inserting changes the bundle's size: the bundle is named at its first
            // entry; a changed or swapped entry is named exactly.
            "removed" | "inserted" => assert!(
                p["what"].as_str().unwrap().contains("bundle 0"),
                "{label}: {r:#}"
            ),
            _ => assert_eq!(p["index"], at as u64, "{label}: {r:#}"),
        }
    }
}

#[test]
fn a_rewrite_that_also_fixes_the_tiles_is_caught_by_the_checkpoint_and_the_old_checkpoint() {
    let g = logged(40);
    let old = g.path("../old-checkpoint");
    std::fs::write(&old, g.git(&["show", "refs/treaty/audit:checkpoint"])).unwrap();
    // Rebuild a log with one entry changed, tiles and all, on a fresh ref, and move it over.
    let lines: String = (0..40)
        .map(|i| {
            let status = if i == 7 { "fail" } else { "pass" };
            format!("{{\"kind\":\"gate.verdict\",\"time\":\"2026-11-22T00:00:00Z\",\"gate\":\"g{i}\",\"status\":\"{status}\",\"head\":\"{i:040x}\"}}\n")
        })
        .collect();
    g.write("../forged.jsonl", lines);
    let real = g.git(&["rev-parse", "refs/treaty/audit"]);
    g.git(&["update-ref", "-d", "refs/treaty/audit"]);
    ok_out(&g, &["audit", "append", "--from-jsonl", "../forged.jsonl"]);
    let forged_log = g.git(&["rev-parse", "refs/treaty/audit"]);
    // The old checkpoint does not match the forged entries.
    rewrite(&g, |files| {
        let cp = std::fs::read(&old).unwrap();
        files.insert("checkpoint".into(), cp);
    });
    let (code, r) = verify(&g, &[]);
    assert_eq!(code, 1);
    assert!(problems(&r).contains("root does not match"), "{r:#}");
    // Signed again by the (compromised) log key: a fork of the same size, shown both.
    g.git(&["update-ref", "refs/treaty/audit", forged_log.trim()]);
    ok_out(&g, &["audit", "checkpoint", "--key", "demo-keys/ci-1.key"]);
    let (code, _) = verify(&g, &[]);
    assert_eq!(code, 0, "on its own the forged log is consistent");
    let (code, r) = verify(&g, &["--from", old.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(problems(&r).contains("fork"), "{r:#}");
    // The gate, given the published checkpoint, fails the rewrite; the real log passes.
    let gate = |audit_head: &str| {
        g.treaty()
            .args([
                "gate",
                "--base",
                "HEAD",
                "--head",
                "HEAD",
                "--format",
                "json",
                "--audit-base",
            ])
            .arg(&old)
            .args(["--audit-head", audit_head])
            .output()
            .unwrap()
    };
    let out = gate("refs/treaty/audit");
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let audit = rep["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "audit")
        .unwrap();
    assert_eq!(audit["status"], "fail", "{audit:#}");
    assert_eq!(audit["findings"][0]["code"], "audit-not-extension");
    let out = gate(real.trim());
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let audit = rep["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "audit")
        .unwrap();
    assert_eq!(audit["status"], "pass", "{audit:#}");
    // A truncated log (history rewritten to fewer entries) against the old checkpoint.
    g.git(&["update-ref", "refs/treaty/audit", real.trim()]);
    rewrite(&g, |files| {
        edit_bundle(files, "tile/entries/000.p/40", |e| e.truncate(30));
        let b = files.remove("tile/entries/000.p/40").unwrap();
        files.insert("tile/entries/000.p/30".into(), b);
        let t = files.remove("tile/0/000.p/40").unwrap();
        files.insert("tile/0/000.p/30".into(), t[..30 * 32].to_vec());
    });
    let (code, r) = verify(&g, &["--from", old.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        problems(&r).contains("entries removed") || problems(&r).contains("shrank"),
        "{r:#}"
    );
}

#[test]
fn checkpoints_by_the_wrong_key_and_malformed_tiles_or_checkpoints_fail() {
    let g = logged(10);
    // council-1 is not in the log group.
    let out = g
        .treaty()
        .args(["audit", "checkpoint", "--key", "demo-keys/council-1.key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a member of log group"));
    // A checkpoint note signed by a non-member key, planted by hand.
    let key = g.key("council-1");
    let cp = treaty::note::Checkpoint {
        origin: treaty::audit::DEFAULT_ORIGIN.into(),
        size: 10,
        root: {
            let r = g.git(&["show", "refs/treaty/audit:checkpoint"]);
            let n = treaty::note::Note::parse(r.as_bytes()).unwrap();
            treaty::note::Checkpoint::parse(&n.text).unwrap().root
        },
        extensions: vec![],
    };
    let note = treaty::note::sign(&cp.text(), treaty::audit::DEFAULT_ORIGIN, &key).unwrap();
    rewrite(&g, |f| {
        f.insert("checkpoint".into(), note.encode().into_bytes());
    });
    let (code, r) = verify(&g, &[]);
    assert_eq!(code, 1);
    assert!(problems(&r).contains("0 of 1 required signatures"), "{r:#}");
    // Malformed: a truncated checkpoint, a truncated tile, a truncated bundle.
    let g = logged(10);
    for (label, path, cut) in [
        ("checkpoint", "checkpoint", 20usize),
        ("tile", "tile/0/000.p/10", 31),
        ("bundle", "tile/entries/000.p/10", 9),
    ] {
        let before = g.git(&["rev-parse", "refs/treaty/audit"]);
        rewrite(&g, |f| {
            let b = f.get_mut(path).unwrap();
            b.truncate(b.len() - cut);
        });
        let (code, r) = verify(&g, &[]);
        assert_eq!(code, 1, "{label}: {r:#}");
        g.git(&["update-ref", "refs/treaty/audit", before.trim()]);
    }
    // Appending to a broken log is refused.
    rewrite(&g, |f| {
        f.get_mut("tile/0/000.p/10").unwrap()[0] ^= 1;
    });
    g.treaty()
        .args(["audit", "append", "--kind", "x"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("will not be extended"));
}

#[test]
fn proofs_verify_only_for_their_own_size_and_root() {
    let g = logged(300);
    let p: treaty::audit::InclusionProof =
        serde_json::from_str(&ok_out(&g, &["audit", "prove", "123"])).unwrap();
    assert_eq!(p.size, 300);
    assert!(treaty::audit::check_inclusion(&p).is_ok());
    // A proof made for another size does not verify against this checkpoint's size and root.
    let mut other: treaty::audit::InclusionProof =
        serde_json::from_str(&ok_out(&g, &["audit", "prove", "123", "--size", "200"])).unwrap();
    assert!(treaty::audit::check_inclusion(&other).is_ok());
    other.size = p.size;
    other.root = p.root.clone();
    assert!(
        treaty::audit::check_inclusion(&other).is_err(),
        "a proof for another size"
    );
    let mut trunc = p.clone();
    trunc.proof.pop();
    assert!(treaty::audit::check_inclusion(&trunc).is_err());
    let c: treaty::audit::ConsistencyProof =
        serde_json::from_str(&ok_out(&g, &["audit", "consistency", "17", "300"])).unwrap();
    assert!(treaty::audit::check_consistency(&c).is_ok());
    let mut bad = c.clone();
    bad.old_root = bad.new_root.clone();
    assert!(treaty::audit::check_consistency(&bad).is_err());
    // Positions the log does not have: an unresolvable request (2), not a finding.
    g.treaty().args(["audit", "prove", "300"]).assert().code(2);
    g.treaty()
        .args(["audit", "consistency", "301", "17"])
        .assert()
        .code(2);
}

/// Extracts the tree of `refs/treaty/audit` into `../<name>`, as `git archive | tar -x` would.
pub(crate) fn export_log(g: &Gov, name: &str) -> std::path::PathBuf {
    let dir = g.path(&format!("../{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let tar = std::process::Command::new("git")
        .args(["archive", "--format=tar", "refs/treaty/audit"])
        .current_dir(&g.dir)
        .output()
        .unwrap();
    assert!(tar.status.success());
    let st = std::process::Command::new("tar")
        .args(["-xf", "-"])
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&tar.stdout)?;
            c.wait()
        })
        .unwrap();
    assert!(st.success());
    dir
}

/// Runs tests/reference/audit.py with `--keys` (when given: the repository whose root names
/// the log group) and `args`.
pub(crate) fn outside(
    keys: Option<&std::path::Path>,
    args: &[&std::path::Path],
) -> std::process::Output {
    let python = std::env::var("TREATY_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/audit.py");
    let mut c = std::process::Command::new(&python);
    c.arg(&script);
    if let Some(k) = keys {
        c.arg("--keys").arg(k);
    }
    c.args(args).output().unwrap()
}

pub(crate) fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// tests/reference/audit.py, written from RFC 9162 and C2SP tlog-tiles, reads the exported
/// tiles and must agree on the root and on our proofs (and reject a bad one).
#[test]
fn an_outside_verifier_agrees_on_roots_and_proofs() {
    let g = logged(600);
    let export = export_log(&g, "export");
    let proof = g.path("../p.json");
    std::fs::write(&proof, ok_out(&g, &["audit", "prove", "421"])).unwrap();
    let cons = g.path("../c.json");
    std::fs::write(&cons, ok_out(&g, &["audit", "consistency", "255", "600"])).unwrap();
    let run = |args: &[&std::path::Path]| outside(Some(g.dir.as_path()), args);
    let out = run(&[&export, &proof, &cons]);
    assert!(out.status.success(), "{}", said(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, r) = verify(&g, &[]);
    assert!(text.contains(r["root"].as_str().unwrap()), "{text}");
    // A proof with one hash changed is rejected by the outside verifier too.
    let mut p: serde_json::Value = serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    p["proof"][0] = "00".repeat(32).into();
    std::fs::write(&proof, serde_json::to_vec(&p).unwrap()).unwrap();
    assert!(!run(&[&export, &proof, &cons]).status.success());
}

/// The outside verifier checks the checkpoint's signed note against the log group the root
/// names (threshold of members, key name = origin) and every tile at every level: a
/// checkpoint re-signed by a key outside the group, a flipped signature byte and a flipped
/// byte in a level-1 tile all fail it; the honest export passes.
#[test]
fn the_outside_verifier_checks_the_checkpoint_signature_and_every_tile_level() {
    // 600 entries: level-0 tiles 000, 001, 002.p/88 and the level-1 tile 000.p/2.
    let g = logged(600);
    let honest = export_log(&g, "honest");
    let out = outside(Some(g.dir.as_path()), &[&honest]);
    assert!(out.status.success(), "{}", said(&out));
    let text = said(&out);
    assert!(text.contains("tiles 4 levels 2"), "{text}");
    assert!(
        text.contains("signed by ci-1 of log group automation"),
        "{text}"
    );
    // Its keys/ folder works as well as the repository; without keys there is no verdict.
    assert!(outside(Some(g.path("keys").as_path()), &[&honest])
        .status
        .success());
    assert!(!outside(None, &[&honest]).status.success());

    let cp = std::fs::read_to_string(honest.join("checkpoint")).unwrap();
    let note = treaty::note::Note::parse(cp.as_bytes()).unwrap();
    let origin = treaty::note::Checkpoint::parse(&note.text).unwrap().origin;
    let fails = |name: &str, change: &dyn Fn(&std::path::Path)| -> String {
        let dir = export_log(&g, name);
        change(dir.as_path());
        let out = outside(Some(g.dir.as_path()), &[&dir]);
        assert!(!out.status.success(), "{name}: {}", said(&out));
        said(&out)
    };
    // (a) The same checkpoint re-signed, under the origin's name, by council-1 (not in the
    // log group `automation`) instead of ci-1.
    let text = fails("resigned", &|d: &std::path::Path| {
        let forged = treaty::note::sign(&note.text, &origin, &g.key("council-1")).unwrap();
        std::fs::write(d.join("checkpoint"), forged.encode()).unwrap();
    });
    assert!(text.contains("0 of the 1 signatures"), "{text}");
    // (b) One byte of ci-1's signature flipped (its key id left alone).
    let text = fails("flipped-signature", &|d: &std::path::Path| {
        let mut bad = note.clone();
        bad.signatures[0].2[10] ^= 1;
        std::fs::write(d.join("checkpoint"), bad.encode()).unwrap();
    });
    assert!(text.contains("does not verify"), "{text}");
    // (c) One byte of the level-1 tile flipped: named by its path.
    let text = fails("flipped-tile", &|d: &std::path::Path| {
        let tile = d.join("tile/1/000.p/2");
        let mut b = std::fs::read(&tile).unwrap();
        b[40] ^= 1;
        std::fs::write(&tile, b).unwrap();
    });
    assert!(text.contains("tile/1/000.p/2"), "{text}");
    // (d) The honest export still passes (nothing above touched it).
    assert!(outside(Some(g.dir.as_path()), &[&honest]).status.success());
}

#[test]
fn an_approval_reaching_its_threshold_is_logged_once_by_its_signer() {
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["version"] = (t["version"].as_u64().unwrap() + 1).into();
    g.write_json(AKASH, &t);
    let sign = |who: &str| {
        ok_out(
            &g,
            &[
                "sign",
                AKASH,
                "--audit",
                "--key",
                &format!("demo-keys/{who}.key"),
            ],
        )
    };
    assert!(!sign("council-1").contains("audit entry"));
    assert!(!sign("council-2").contains("audit entry"));
    assert!(sign("akash-1").contains("logged as audit entry 0"));
    // A further signature does not log the same approval again.
    assert!(!sign("council-3").contains("audit entry"));
    ok_out(&g, &["audit", "checkpoint", "--key", "demo-keys/ci-1.key"]);
    let (code, r) = verify(&g, &[]);
    assert_eq!((code, r["size"].as_u64()), (0, Some(1)), "{r:#}");
    let show: serde_json::Value =
        serde_json::from_str(&ok_out(&g, &["audit", "show", "--format", "json"])).unwrap();
    let e = &show["entries"][0];
    assert_eq!(e["kind"], "approval.threshold");
    assert_eq!(e["subject"]["path"], AKASH);
    assert_eq!(e["actor"], g.key("akash-1").classical_public().key_id());
}

/// The log's current checkpoint, as stored.
fn checkpoint_note(g: &Gov) -> Vec<u8> {
    let cp = std::process::Command::new("git")
        .args(["show", "refs/treaty/audit:checkpoint"])
        .current_dir(&g.dir)
        .output()
        .unwrap();
    assert!(cp.status.success());
    cp.stdout
}

/// `treaty audit cosign --line LINE --witness VKEY`.
fn cosign_line(g: &Gov, line: &str, vkey: &str) -> std::process::Output {
    g.treaty()
        .args(["audit", "cosign", "--line", line, "--witness", vkey])
        .output()
        .unwrap()
}

/// `treaty audit cosign` by witness.example/w3, with a key held here.
const COSIGN_W3: [&str; 6] = [
    "audit",
    "cosign",
    "--key",
    "demo-keys/council-1.key",
    "--name",
    "witness.example/w3",
];

/// Runs tests/reference/cosign.py (an independent C2SP cosigner written from the spec) on the
/// log's current checkpoint: its verifier key and signature line.
fn outside_cosign(g: &Gov, seed: &str, name: &str, time: u64) -> (String, String) {
    let python = std::env::var("TREATY_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/cosign.py");
    let file = g.path("../checkpoint.note");
    std::fs::write(&file, checkpoint_note(g)).unwrap();
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args(["--seed", seed, "--name", name, "--time", &time.to_string()])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", said(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {text}"))
            .to_owned()
    };
    (field("vkey "), field("line "))
}

/// C2SP witnesses: a cosignature/v1 (0x04) made by an independent implementation of the spec
/// is accepted once `treaty audit cosign --line` checked it, and `audit verify --witness`
/// then passes; a forged one (another key under the witness's name, a flipped bit, a line for
/// another checkpoint) is refused at the door and, slipped into the log, by `audit verify`.
/// `treaty audit cosign --key` makes the same form, which verifies too.
#[test]
fn c2sp_cosignatures_from_an_independent_cosigner_are_accepted_and_forgeries_refused() {
    let g = logged(12);
    let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    let name = "witness.example/w1";
    let (vkey, line) = outside_cosign(&g, seed, name, 1_764_460_800);
    // base64 of 0x04 and the key begins with "B" (0b000001): a 0x04..0x07 type byte.
    assert!(
        vkey.splitn(3, '+').nth(2).unwrap().starts_with('B'),
        "a 0x04 key: {vkey}"
    );
    // Not yet cosigned: the witness is required and missing.
    let (code, _) = verify(&g, &["--witness", &vkey]);
    assert_eq!(code, 1);
    // Forgeries at the door: another key under the same name; a flipped bit.
    let (_, other) = outside_cosign(
        &g,
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        name,
        1_764_460_800,
    );
    let mut flipped = line.clone().into_bytes();
    let last = flipped.len() / 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for forged in [&other, &flipped] {
        let o = cosign_line(&g, forged, &vkey);
        assert_eq!(o.status.code(), Some(1), "{}", said(&o));
        assert!(said(&o).contains("refused"), "{}", said(&o));
    }
    // The honest line: accepted, and the witness's requirement met.
    ok_out(
        &g,
        &["audit", "cosign", "--line", &line, "--witness", &vkey],
    );
    let (code, v) = verify(&g, &["--witness", &vkey]);
    assert_eq!(code, 0, "{v}");
    // The witness's own time is reported: the cosignature's timestamp, as RFC 3339.
    let at = v["checkpoint"]["cosigned_at"][name]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(at.ends_with('Z') && at.len() >= 20, "{v}");
    assert_eq!(
        treaty::time::parse(&at).unwrap().unix(),
        1_764_460_800,
        "{v}"
    );
    // A forged line slipped into the checkpoint past the door: the requirement is not met by
    // it (another witness's honest line is needed, and it is not there).
    let (vkey2, line2) = outside_cosign(&g, &"11".repeat(32), "witness.example/w2", 1_764_460_801);
    let repo = git2::Repository::open(&g.dir).unwrap();
    let cp = checkpoint_note(&g);
    let (_, forged2) = outside_cosign(&g, &"22".repeat(32), "witness.example/w2", 1_764_460_801);
    // Two forgeries past the door: a line by another key under w2's name (its key id is not
    // w2's), and w2's honest line with a bit flipped (it reaches the signature check).
    let mut flipped2 = line2.into_bytes();
    let mid = flipped2.len() / 2;
    flipped2[mid] = if flipped2[mid] == b'A' { b'B' } else { b'A' };
    let mut with = String::from_utf8(cp).unwrap();
    with.push_str(&forged2);
    with.push('\n');
    with.push_str(&String::from_utf8(flipped2).unwrap());
    with.push('\n');
    treaty::audit::store::put_checkpoint(&repo, with.as_bytes(), "a forged cosignature").unwrap();
    let (code, _) = verify(&g, &["--witness", &vkey2]);
    assert_eq!(code, 1);
    // The first witness's line is still good beside it.
    let (code, v) = verify(&g, &["--witness", &vkey]);
    assert_eq!(code, 0, "{v}");
    // Made here: the same form, verified by the key it prints.
    let out = ok_out(&g, &COSIGN_W3);
    let vkey3 = out
        .lines()
        .find_map(|l| l.strip_prefix("cosigned as "))
        .unwrap()
        .to_owned();
    assert!(
        vkey3.splitn(3, '+').nth(2).unwrap().starts_with('B'),
        "{vkey3}"
    );
    let (code, v) = verify(&g, &["--witness", &vkey3, "--witness", &vkey]);
    assert_eq!(code, 0, "{v}");
    // Cosigning again replaces the witness's line (a new timestamp), never piles up.
    ok_out(&g, &COSIGN_W3);
    let lines = String::from_utf8_lossy(&checkpoint_note(&g))
        .lines()
        .filter(|l| l.starts_with("\u{2014} witness.example/w3 "))
        .count();
    assert_eq!(lines, 1);
    // One key under two witness names would count one signature twice: a usage error.
    let (same_key, _) = outside_cosign(&g, seed, "witness.example/alias", 1_764_460_800);
    let o = g
        .treaty()
        .args([
            "audit",
            "verify",
            "--witness",
            &vkey,
            "--witness",
            &same_key,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    // A line for an earlier checkpoint, replayed on a newer one: refused at the door, and the
    // newer checkpoint is not witnessed by it.
    g.write(
        "../more.jsonl",
        "{\"kind\":\"gate.verdict\",\"time\":\"2026-11-22T00:00:00Z\",\"gate\":\"later\",\"status\":\"pass\",\"head\":\"ffffffffffffffffffffffffffffffffffffffff\"}\n",
    );
    ok_out(&g, &["audit", "append", "--from-jsonl", "../more.jsonl"]);
    ok_out(&g, &["audit", "checkpoint", "--key", "demo-keys/ci-1.key"]);
    let o = cosign_line(&g, &line, &vkey);
    assert_eq!(o.status.code(), Some(1), "{}", said(&o));
    let (code, _) = verify(&g, &["--witness", &vkey]);
    assert_eq!(code, 1);
    // A line dated more than ten minutes ahead of this clock is refused at the door.
    let ahead = u64::try_from(treaty::time::now().unix()).unwrap() + 3_600;
    let (_, future) = outside_cosign(&g, seed, name, ahead);
    let o = cosign_line(&g, &future, &vkey);
    assert_eq!(o.status.code(), Some(1), "{}", said(&o));
    assert!(
        said(&o).contains("ahead") || said(&o).contains("after this clock"),
        "{}",
        said(&o)
    );
    // Its honest twin, dated now, is accepted.
    let now = u64::try_from(treaty::time::now().unix()).unwrap();
    let (_, fresh) = outside_cosign(&g, seed, name, now);
    ok_out(
        &g,
        &["audit", "cosign", "--line", &fresh, "--witness", &vkey],
    );
    let (code, v) = verify(&g, &["--witness", &vkey]);
    assert_eq!(code, 0, "{v}");
}
