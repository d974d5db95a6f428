//! Test fixtures: a signed demo federation, copied fresh for every test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use treaty::crypto::SigningKey;
use treaty::dsse::{self, Envelope};
use treaty::statement::{GroupRef, Statement};

/// The demo federation is built once per test process (key generation and ~60 signatures)
/// and copied, `.git` included, for each test.
fn template() -> &'static Path {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("treaty-template-")
            .tempdir()
            .unwrap()
            .keep();
        treaty::scaffold::demo(&dir, true).unwrap();
        dir
    })
}

pub struct Gov {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

impl Gov {
    /// A fresh copy of the signed demo federation, committed on `main`.
    pub fn demo() -> Gov {
        let tmp = tempfile::Builder::new()
            .prefix("treaty-it-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().join("gov");
        let st = Command::new("cp")
            .arg("-a")
            .arg(template())
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
        Gov { _tmp: tmp, dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap()
    }

    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    pub fn json(&self, rel: &str) -> serde_json::Value {
        serde_json::from_slice(&self.read(rel)).unwrap()
    }

    pub fn write_json(&self, rel: &str, v: &serde_json::Value) {
        let mut b = serde_json::to_vec_pretty(v).unwrap();
        b.push(b'\n');
        self.write(rel, b);
    }

    /// Runs the real git CLI in the repository.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn commit(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
    }

    pub fn treaty(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("treaty").unwrap();
        c.current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .env_remove("TREATY_PASSPHRASE");
        c
    }

    pub fn key(&self, id: &str) -> SigningKey {
        SigningKey::load(&self.path(&format!("demo-keys/{id}.key")), || {
            Ok(String::new())
        })
        .unwrap()
    }

    /// `treaty sign REL --key demo-keys/ID.key` for each id; asserts success.
    pub fn sign(&self, rel: &str, ids: &[&str]) {
        for id in ids {
            self.treaty()
                .args(["sign", rel, "--key", &format!("demo-keys/{id}.key")])
                .assert()
                .success();
        }
    }

    /// `treaty root sign --key demo-keys/ID.key` for each id (a root update's approvals).
    pub fn sign_root(&self, ids: &[&str]) {
        for id in ids {
            self.treaty()
                .args(["root", "sign", "--key", &format!("demo-keys/{id}.key")])
                .assert()
                .success();
        }
    }

    /// `treaty verify --format json` (plus `extra`): exit code and report.
    pub fn verify(&self, extra: &[&str]) -> (i32, serde_json::Value) {
        let out = self
            .treaty()
            .args(["verify", "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "verify printed no JSON ({e}); exit {code}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, v)
    }

    /// The group refs a statement for `rel` must name, read from the committed trust files.
    pub fn refs(&self, groups: &[&str]) -> Vec<GroupRef> {
        let root = self.json("keys/root.json");
        groups
            .iter()
            .map(|g| GroupRef {
                name: g.to_string(),
                group_id: root["groups"][g].as_str().unwrap().to_owned(),
            })
            .collect()
    }

    /// An envelope over `stmt` signed by the given demo members (all their keys).
    pub fn envelope(&self, stmt: &Statement, ids: &[&str]) -> Envelope {
        let payload = stmt.to_bytes();
        let pae = dsse::pae(dsse::PAYLOAD_TYPE, &payload);
        let mut signatures = vec![];
        for id in ids {
            for m in self.key(id).sign(&pae).unwrap() {
                signatures.push(dsse::Signature {
                    keyid: m.key.key_id(),
                    sig: m.sig,
                });
            }
        }
        Envelope {
            payload,
            signatures,
        }
    }

    pub fn envelope_of(&self, rel: &str) -> Envelope {
        Envelope::parse(&self.read(&format!("{rel}.sig"))).unwrap()
    }

    pub fn put_envelope(&self, rel: &str, e: &Envelope) {
        self.write(&format!("{rel}.sig"), e.to_bytes());
    }
}

/// Every finding code in a report (global and per file), with the path it is about.
pub fn codes(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut push = |f: &serde_json::Value| {
        out.push((
            f["code"].as_str().unwrap_or("").to_owned(),
            f["path"].as_str().unwrap_or("").to_owned(),
        ));
    };
    for f in report["findings"].as_array().into_iter().flatten() {
        push(f);
    }
    for file in report["files"].as_array().into_iter().flatten() {
        for f in file["findings"].as_array().into_iter().flatten() {
            push(f);
        }
    }
    out
}

pub fn has(report: &serde_json::Value, code: &str, path: &str) -> bool {
    codes(report).iter().any(|(c, p)| c == code && p == path)
}

pub fn file<'a>(report: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no verdict for {path}"))
}

pub const AKASH: &str = "treaties/AURORA-AKASH-001.json";
pub const IONET: &str = "treaties/AURORA-IONET-001.json";

/// Asserts the demo is approved (the honest baseline every attack test starts from).
pub fn assert_approved(g: &Gov) {
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 0, "expected approved: {:#?}", codes(&r));
    assert_eq!(r["approved"], true);
}

/// Asserts exit 1 and that `code` was reported for `path`.
pub fn assert_rejected(g: &Gov, extra: &[&str], code: &str, path: &str) -> serde_json::Value {
    let (exit, r) = g.verify(extra);
    assert_eq!(
        exit,
        1,
        "expected rejection with {code} on {path}, got exit {exit}: {:#?}",
        codes(&r)
    );
    assert!(
        has(&r, code, path),
        "expected {code} on {path}; got {:#?}",
        codes(&r)
    );
    assert_eq!(r["approved"], false);
    r
}

/// `treaty gate --base main --head HEAD --format json` (plus `extra`): exit code and report.
pub fn gate_json(g: &Gov, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = g
        .treaty()
        .args([
            "gate", "--base", "main", "--head", "HEAD", "--format", "json",
        ])
        .args(extra)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "gate printed no JSON ({e}); exit {code}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

/// One layer of `treaty release verify --format json`'s report (a test failure when absent).
pub fn release_layer(report: &serde_json::Value, name: &str) -> serde_json::Value {
    report["layers"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["layer"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no {name} layer in {report:#}"))
}
