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

#[test]
fn release_verify_checks_integrity_first_and_names_the_failing_layer() {
    let g = Gov::demo();
    let dist = g.path("../dist");
    g.treaty()
        .args(["release", "bundle", "--name", "fed", "--out"])
        .arg(&dist)
        .assert()
        .success();
    let bundle = dist.join("fed");
    // Intact but unsealed: integrity and history pass; the full check fails on authenticity.
    g.treaty()
        .args(["release", "verify", "--integrity-only"])
        .arg(&bundle)
        .assert()
        .success();
    g.treaty()
        .args(["release", "verify"])
        .arg(&bundle)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("the authenticity layer failed"));
    // One bit of the archive: integrity fails, even though the bundle is unsealed.
    let arc = dist.join("fed.tar.gz");
    let good = std::fs::read(&arc).unwrap();
    let mut bad = good.clone();
    let n = bad.len() / 3;
    bad[n] ^= 0x10;
    std::fs::write(&arc, &bad).unwrap();
    g.treaty()
        .args(["release", "verify", "--integrity-only"])
        .arg(&bundle)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("the integrity layer failed"));
    std::fs::write(&arc, &good).unwrap();
    // An edited manifest (a file's digest) fails integrity too.
    let mpath = dist.join("fed.manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["files"][0]["sha256"] = "00".repeat(32).into();
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    g.treaty()
        .args(["release", "verify", "--integrity-only"])
        .arg(&bundle)
        .assert()
        .code(1)
        .stdout(predicates::str::contains(
            "content differs from the manifest",
        ));
}

#[test]
fn hostile_archives_are_refused_without_writing_anything() {
    // Tars with a `..` entry, an absolute path, a symlink and a device file, each listed in a
    // manifest whose digests match, so only the entry checks stand in the way.
    let g = Gov::demo();
    let dist = g.path("../hostile");
    std::fs::create_dir_all(&dist).unwrap();
    let abs = g.path("../abs-escape").display().to_string();
    for (entry, kind) in [
        ("../escape", tar::EntryType::Regular),
        (abs.as_str(), tar::EntryType::Regular),
        ("link", tar::EntryType::Symlink),
        ("dev", tar::EntryType::Char),
    ] {
        let link = kind == tar::EntryType::Symlink;
        let mut data = Vec::new();
        {
            let mut gz = flate2::write::GzEncoder::new(&mut data, flate2::Compression::default());
            {
                let mut t = tar::Builder::new(&mut gz);
                let mut h = tar::Header::new_gnu();
                if link {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    t.append_link(&mut h, entry, "/etc/passwd").unwrap();
                } else if kind == tar::EntryType::Char {
                    h.set_entry_type(kind);
                    h.set_size(0);
                    h.set_device_major(1).unwrap();
                    h.set_device_minor(3).unwrap();
                    t.append_data(&mut h, entry, &b""[..]).unwrap();
                } else {
                    // Write the raw name so the builder's own `..` check does not stop us.
                    h.as_old_mut().name[..entry.len()].copy_from_slice(entry.as_bytes());
                    h.set_size(1);
                    h.set_cksum();
                    t.append(&h, &b"x"[..]).unwrap();
                }
                t.finish().unwrap();
            }
            gz.finish().unwrap();
        }
        std::fs::write(dist.join("h.tar.gz"), &data).unwrap();
        let m = serde_json::json!({
            "archive": { "sha256": treaty::crypto::sha256_hex(&data), "blake3": treaty::crypto::blake3_hex(&data) },
            "files": [{ "path": entry, "size": 1 }],
            "merkle": { "root": "" },
        });
        std::fs::write(
            dist.join("h.manifest.json"),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
        g.treaty()
            .args(["release", "verify", "--integrity-only"])
            .arg(dist.join("h"))
            .assert()
            .code(1)
            .stdout(predicates::str::contains("integrity layer failed"));
    }
    assert!(!g.path("../escape").exists() && !g.path("../hostile/link").exists());
    assert!(!g.path("../abs-escape").exists() && !g.path("../hostile/dev").exists());
}
