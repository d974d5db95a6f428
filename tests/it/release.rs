//! `treaty release bundle`: deterministic archives that `sha256sum -c` and `tar` accept.

use crate::common::*;

fn sh(dir: &std::path::Path, cmd: &[&str]) -> std::process::Output {
    std::process::Command::new(cmd[0])
        .args(&cmd[1..])
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn the_approved_state_bundles_deterministically_and_standard_tools_accept_it() {
    let g = Gov::demo();
    let out1 = g.path("../dist1");
    let out2 = g.path("../dist2");
    for out in [&out1, &out2] {
        g.treaty()
            .args(["release", "bundle", "--name", "fed-v1", "--out"])
            .arg(out)
            .assert()
            .success();
    }
    for f in ["fed-v1.tar.gz", "fed-v1.manifest.json", "SHA256SUMS"] {
        assert_eq!(
            std::fs::read(out1.join(f)).unwrap(),
            std::fs::read(out2.join(f)).unwrap(),
            "{f} differs between two runs"
        );
    }
    let check = sh(&out1, &["sha256sum", "-c", "SHA256SUMS"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let list = sh(&out1, &["tar", "--numeric-owner", "-tvzf", "fed-v1.tar.gz"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
    assert!(
        names.contains(&"treaties/AURORA-AKASH-001.json") && names.contains(&"keys/root.json.sig")
    );
    assert!(
        text.lines()
            .all(|l| l.starts_with("-rw-r--r-- 0/0") && l.contains("1970-01-01")),
        "{text}"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out1.join("fed-v1.manifest.json")).unwrap()).unwrap();
    assert_eq!(
        m["source"]["commit"].as_str().unwrap(),
        g.git(&["rev-parse", "HEAD"]).trim()
    );
    assert_eq!(m["files"].as_array().unwrap().len(), names.len());
}

#[test]
fn an_unapproved_state_is_not_bundled() {
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["quotas"]["concurrent_jobs"] = 1.into();
    g.write_json(AKASH, &t);
    g.commit("tampered");
    g.treaty()
        .args(["release", "bundle", "--out"])
        .arg(g.path("../dist"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("not approved"));
    assert!(!g.path("../dist/release.tar.gz").exists());
}

#[test]
fn artifact_files_bundle_and_verify_with_sha256sum() {
    let g = Gov::demo();
    let a = g.path("../artifact.bin");
    std::fs::write(&a, vec![7u8; 100_000]).unwrap();
    g.treaty()
        .args(["release", "bundle", "--name", "tool-1.0", "--out"])
        .arg(g.path("../dist"))
        .arg(&a)
        .assert()
        .success();
    assert!(sh(&g.path("../dist"), &["sha256sum", "-c", "SHA256SUMS"])
        .status
        .success());
    // One flipped bit in the archive fails the standard check.
    let p = g.path("../dist/tool-1.0.tar.gz");
    let mut b = std::fs::read(&p).unwrap();
    let n = b.len() / 2;
    b[n] ^= 1;
    std::fs::write(&p, b).unwrap();
    assert!(!sh(&g.path("../dist"), &["sha256sum", "-c", "SHA256SUMS"])
        .status
        .success());
}
