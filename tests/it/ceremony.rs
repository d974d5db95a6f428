//! The release ceremony end to end: three officers (2-of-3), two local RFC 3161 authorities
//! (`openssl ts -reply`), real `gpg`; then every attack on a sealed release.

use crate::common::*;
use crate::tsa::{down_url, Ca, Mode, Tsa};
use std::path::{Path, PathBuf};
use std::process::Command;

const NAME: &str = "fed-v1";

struct Ceremony {
    g: Gov,
    dist: PathBuf,
    cas: PathBuf,
    trusted: Ca,
    second: Ca,
    expired: Ca,
    gnupg: PathBuf,
}

fn run(dir: &Path, cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn gpg(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new("gpg")
        .env("GNUPGHOME", home)
        .args([
            "--batch",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ])
        .args(args)
        .output()
        .expect("gpg is installed (.ci/run installs gnupg)")
}

impl Ceremony {
    /// The demo federation with approved TSA roots (two honest authorities' CAs and one whose
    /// TSA certificate has expired), officer-1 publishing a real GnuPG key, and a bundle.
    fn new() -> Ceremony {
        let g = Gov::demo();
        let cas = g.path("../cas");
        let trusted = Ca::new(&cas, "tsa-a", 365);
        let second = Ca::new(&cas, "tsa-b", 365);
        let expired = Ca::new(&cas, "tsa-x", -1);
        let pem = format!(
            "# Trusted RFC 3161 authority roots (treaty governed file)\n# spec_version: 1.0\n# version: 1\n{}{}{}",
            trusted.root_pem(),
            second.root_pem(),
            expired.root_pem()
        );
        g.write("keys/tsa-roots.pem", pem);
        g.sign("keys/tsa-roots.pem", &["root-1", "root-2"]);
        // officer-1's OpenPGP key: made by real gpg (v4 EdDSA), published in the release group.
        let gnupg = g.path("../gnupg");
        std::fs::create_dir_all(&gnupg).unwrap();
        let st = gpg(
            &gnupg,
            &[
                "--quick-gen-key",
                "Officer One <officer-1@example.invalid>",
                "ed25519",
                "sign",
                "never",
            ],
        );
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let public = gpg(&gnupg, &["--armor", "--export"]).stdout;
        let secret = gpg(&gnupg, &["--armor", "--export-secret-keys"]).stdout;
        std::fs::write(g.path("../officer-1.sec.asc"), &secret).unwrap();
        let group = g.json("keys/groups/release.json");
        let mut me = group["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == "officer-1")
            .unwrap()
            .clone();
        me["openpgp"] = String::from_utf8(public).unwrap().into();
        g.write_json("../officer-1.member.json", &me);
        for args in [
            &["group", "remove-member", "release", "--id", "officer-1"][..],
            &[
                "group",
                "add-member",
                "release",
                "--member",
                "../officer-1.member.json",
            ][..],
            &["root", "sign", "--key", "demo-keys/root-1.key"][..],
            &["root", "sign", "--key", "demo-keys/root-2.key"][..],
        ] {
            g.treaty().args(args).assert().success();
        }
        g.commit("TSA roots; officer-1 publishes an OpenPGP key");
        assert_approved(&g);
        let dist = g.path("../dist");
        g.treaty()
            .args(["release", "bundle", "--name", NAME, "--out"])
            .arg(&dist)
            .assert()
            .success();
        Ceremony {
            g,
            dist,
            cas,
            trusted,
            second,
            expired,
            gnupg,
        }
    }

    fn bundle(&self) -> String {
        self.dist.join(NAME).display().to_string()
    }

    fn release(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        self.g.treaty().arg("release").args(args).assert()
    }

    fn sign(&self, officer: &str) {
        self.release(&[
            "sign",
            &self.bundle(),
            "--key",
            &format!("demo-keys/{officer}.key"),
        ])
        .success();
    }

    fn verify_json(&self, extra: &[&str]) -> (i32, serde_json::Value) {
        let out = self
            .g
            .treaty()
            .args(["release", "verify", &self.bundle(), "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr))),
        )
    }

    /// A sealed, double-timestamped release.
    fn sealed(&self) -> (Tsa, Tsa) {
        self.sign("officer-1");
        self.sign("officer-3");
        self.release(&["seal", &self.bundle()]).success();
        self.stamp_twice()
    }

    /// Timestamps the seal with both honest authorities, both required.
    fn stamp_twice(&self) -> (Tsa, Tsa) {
        let (a, b) = (
            Tsa::start(&self.trusted, Mode::Honest),
            Tsa::start(&self.second, Mode::Honest),
        );
        let b_ = self.bundle();
        let args = [
            "timestamp",
            &b_,
            "--tsa",
            &a.url,
            "--tsa",
            &b.url,
            "--min",
            "2",
        ];
        self.release(&args).success();
        (a, b)
    }

    /// A copy of the dist folder to attack; returns its DIR/NAME.
    fn copy(&self, label: &str) -> PathBuf {
        let to = self.g.path(&format!("../{label}"));
        let st = Command::new("cp")
            .arg("-a")
            .arg(&self.dist)
            .arg(&to)
            .status()
            .unwrap();
        assert!(st.success());
        to.join(NAME)
    }

    fn verify_at(&self, bundle: &Path) -> (i32, serde_json::Value) {
        let out = self
            .g
            .treaty()
            .args(["release", "verify", "--format", "json"])
            .arg(bundle)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            serde_json::from_slice(&out.stdout).unwrap(),
        )
    }
}

fn failed(r: &serde_json::Value) -> (&str, String) {
    let layer = r["failed_layer"].as_str().unwrap_or("none");
    let detail = r["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["layer"] == layer)
        .map(|l| l["detail"].as_str().unwrap().to_owned())
        .unwrap_or_default();
    (layer, detail)
}

#[test]
fn the_full_ceremony_passes_and_standard_tools_accept_what_we_wrote() {
    let c = Ceremony::new();
    // Unsealed: integrity passes, authenticity fails.
    let (code, r) = c.verify_json(&[]);
    assert_eq!(code, 1);
    assert_eq!(failed(&r).0, "authenticity");
    // One officer is not enough; the refusal names who may still sign.
    c.sign("officer-1");
    let out =
        c.g.treaty()
            .args(["release", "seal", &c.bundle()])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 of 2") && err.contains("officer-2") && err.contains("officer-3"),
        "{err}"
    );
    c.sign("officer-3");
    c.release(&["seal", &c.bundle()]).success();
    // OpenPGP through rpgp with the exported key, and again through the user's own gpg.
    c.release(&[
        "sign-pgp",
        &c.bundle(),
        "--pgp-key",
        c.g.path("../officer-1.sec.asc").to_str().unwrap(),
    ])
    .success();
    let asc = c.dist.join(format!("{NAME}.tar.gz.asc"));
    let tgz = c.dist.join(format!("{NAME}.tar.gz"));
    let v = gpg(
        &c.gnupg,
        &["--verify", asc.to_str().unwrap(), tgz.to_str().unwrap()],
    );
    assert!(
        v.status.success(),
        "gpg --verify: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    c.g.treaty()
        .env("GNUPGHOME", &c.gnupg)
        .args([
            "release",
            "sign-pgp",
            &c.bundle(),
            "--gpg-program",
            "gpg",
            "--force",
        ])
        .assert()
        .success();
    let v = gpg(
        &c.gnupg,
        &["--verify", asc.to_str().unwrap(), tgz.to_str().unwrap()],
    );
    assert!(v.status.success());
    // Two authorities, both required.
    let _tsas = c.stamp_twice();
    let (code, r) = c.verify_json(&["--min-timestamps", "2"]);
    assert_eq!(code, 0, "{r:#}");
    let detail = |l: &str| {
        r["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["layer"] == l)
            .unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(detail("authenticity").contains("officer-1, officer-3"));
    assert!(detail("authenticity").contains("OpenPGP signature by officer-1"));
    assert!(detail("time").starts_with("2 timestamp(s)"));
    // The tokens pass `openssl ts -verify`, the sums `sha256sum -c`.
    let roots = c.g.path("keys/tsa-roots.pem");
    let seal = c.dist.join(format!("{NAME}.seal.json"));
    let tokens: Vec<_> = std::fs::read_dir(c.dist.join(format!("{NAME}.timestamps")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(tokens.len(), 2);
    for t in &tokens {
        let o = run(
            &c.dist,
            "openssl",
            &[
                "ts",
                "-verify",
                "-in",
                t.to_str().unwrap(),
                "-data",
                seal.to_str().unwrap(),
                "-CAfile",
                roots.to_str().unwrap(),
            ],
        );
        assert!(
            o.status.success(),
            "openssl ts -verify: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(run(&c.dist, "sha256sum", &["-c", "SHA256SUMS"])
        .status
        .success());
    // Inclusion proofs: printed, accepted, and a forged one refused.
    let out =
        c.g.treaty()
            .args(["release", "prove", &c.bundle(), AKASH])
            .output()
            .unwrap();
    assert!(out.status.success());
    let proof = c.g.path("../akash.proof.json");
    std::fs::write(&proof, &out.stdout).unwrap();
    let (code, r) = c.verify_json(&["--proof", proof.to_str().unwrap()]);
    assert_eq!(code, 0, "{r:#}");
    let mut p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    p["sha256"] = "00".repeat(32).into();
    std::fs::write(&proof, serde_json::to_vec(&p).unwrap()).unwrap();
    let (code, r) = c.verify_json(&["--proof", proof.to_str().unwrap()]);
    assert_eq!((code, failed(&r).0), (1, "history"));
    c.release(&["prove", &c.bundle(), "treaties/NOPE.json"])
        .code(1);
}

#[test]
fn each_failing_authority_gets_its_own_clear_error() {
    let c = Ceremony::new();
    c.sign("officer-1");
    c.sign("officer-2");
    c.release(&["seal", &c.bundle()]).success();
    let untrusted = Ca::new(&c.cas, "tsa-u", 365);
    let cases = [
        (down_url(), "unreachable"),
        (Tsa::start(&c.trusted, Mode::Slow).url, "unreachable"),
        (
            Tsa::start(&c.trusted, Mode::Garbage).url,
            "not a time-stamp response",
        ),
        (Tsa::start(&c.trusted, Mode::OtherImprint).url, "other data"),
        (
            Tsa::start(&c.trusted, Mode::WrongNonce).url,
            "another request",
        ),
        (Tsa::start(&c.trusted, Mode::Unavailable).url, "HTTP 503"),
        (
            Tsa::start(&untrusted, Mode::Honest).url,
            "trusted TSA roots",
        ),
        (Tsa::start(&c.expired, Mode::Honest).url, "expired"),
    ];
    for (url, want) in &cases {
        let out =
            c.g.treaty()
                .args([
                    "release",
                    "timestamp",
                    &c.bundle(),
                    "--tsa",
                    url,
                    "--timeout",
                    "1",
                    "--retries",
                    "0",
                ])
                .output()
                .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{url}: {text}");
        assert!(
            text.contains("FAILED") && text.contains(want),
            "{url}: want {want:?} in {text}"
        );
    }
    // Nothing was written for any of them.
    assert!(!c.dist.join(format!("{NAME}.timestamps")).exists());
    // One honest authority among failing ones meets --min 1; --min 2 does not.
    let good = Tsa::start(&c.trusted, Mode::Honest);
    let bad = Tsa::start(&c.trusted, Mode::Garbage);
    c.release(&[
        "timestamp",
        &c.bundle(),
        "--tsa",
        &bad.url,
        "--tsa",
        &good.url,
        "--min",
        "2",
        "--retries",
        "0",
    ])
    .code(1);
    c.release(&[
        "timestamp",
        &c.bundle(),
        "--tsa",
        &bad.url,
        "--tsa",
        &good.url,
        "--retries",
        "0",
    ])
    .success();
    // A 503 is retried.
    let flaky = Tsa::start(&c.trusted, Mode::Unavailable);
    c.release(&[
        "timestamp",
        &c.bundle(),
        "--tsa",
        &flaky.url,
        "--retries",
        "2",
        "--timeout",
        "2",
    ])
    .code(1);
    assert_eq!(*flaky.requests.lock().unwrap(), 3);
}

#[test]
fn attacks_on_a_sealed_release_fail_the_right_layer() {
    let c = Ceremony::new();
    let _tsas = c.sealed();
    let (code, r) = c.verify_json(&[]);
    assert_eq!(code, 0, "{r:#}");

    // One bit of the archive.
    let b = c.copy("bitflip");
    let tgz = b.with_file_name(format!("{NAME}.tar.gz"));
    let mut bytes = std::fs::read(&tgz).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&tgz, bytes).unwrap();
    let (code, r) = c.verify_at(&b);
    assert_eq!((code, failed(&r).0), (1, "integrity"));

    // The manifest edited (a field that does not break integrity): the seal no longer matches.
    let b = c.copy("manifest-edit");
    let mp = b.with_file_name(format!("{NAME}.manifest.json"));
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    m["tool"] = "treaty 9.9.9".into();
    std::fs::write(&mp, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let (code, r) = c.verify_at(&b);
    assert_eq!((code, failed(&r).0), (1, "authenticity"), "{r:#}");
    assert!(failed(&r).1.contains("another manifest"));

    // A file added to the archive, with the manifest's archive digests updated to match.
    let b = c.copy("added");
    let other = c.g.path("../other");
    let mut files: Vec<(String, treaty::release::Input)> = Vec::new();
    for f in m["files"].as_array().unwrap() {
        let p = f["path"].as_str().unwrap();
        files.push((p.to_owned(), c.g.read(p).into()));
    }
    files.push(("treaties/ZZ-EXTRA.json".into(), b"{}".to_vec().into()));
    let om = treaty::release::bundle(&other, NAME, files, serde_json::json!("x"), None).unwrap();
    std::fs::copy(
        other.join(format!("{NAME}.tar.gz")),
        b.with_file_name(format!("{NAME}.tar.gz")),
    )
    .unwrap();
    let mp = b.with_file_name(format!("{NAME}.manifest.json"));
    let mut m2: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    m2["archive"]["sha256"] = om.archive.sha256.clone().into();
    m2["archive"]["blake3"] = om.archive.blake3.clone().into();
    std::fs::write(&mp, serde_json::to_vec_pretty(&m2).unwrap()).unwrap();
    let (code, r) = c.verify_at(&b);
    assert_eq!((code, failed(&r).0), (1, "integrity"));
    assert!(failed(&r).1.contains("extra"), "{}", failed(&r).1);

    // A signature for another release does not count toward this one.
    let other2 = c.g.path("../dist2");
    // Another release (of other bytes: the same state would give a byte-identical archive).
    c.g.treaty()
        .args([
            "release",
            "bundle",
            "keys/root.json",
            "--name",
            "fed-v2",
            "--out",
        ])
        .arg(&other2)
        .assert()
        .success();
    let b2 = other2.join("fed-v2").display().to_string();
    c.release(&["sign", &b2, "--key", "demo-keys/officer-1.key"])
        .success();
    std::fs::copy(
        c.dist.join(format!("{NAME}.signatures/officer-3.json")),
        other2.join("fed-v2.signatures/officer-3.json"),
    )
    .unwrap();
    let out =
        c.g.treaty()
            .args(["release", "seal", &b2])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signs another statement"));
    // The same officer's signature twice counts once.
    std::fs::copy(
        other2.join("fed-v2.signatures/officer-1.json"),
        other2.join("fed-v2.signatures/officer-1-copy.json"),
    )
    .unwrap();
    c.release(&["seal", &b2]).code(1);
    // A non-member cannot sign at all.
    let out =
        c.g.treaty()
            .args(["release", "sign", &b2, "--key", "demo-keys/council-1.key"])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a member of release group"));

    // An .asc for another file.
    c.release(&[
        "sign-pgp",
        &b2,
        "--pgp-key",
        c.g.path("../officer-1.sec.asc").to_str().unwrap(),
    ])
    .success();
    let b = c.copy("asc-swap");
    std::fs::copy(
        other2.join("fed-v2.tar.gz.asc"),
        b.with_file_name(format!("{NAME}.tar.gz.asc")),
    )
    .unwrap();
    let (code, r) = c.verify_at(&b);
    assert_eq!((code, failed(&r).0), (1, "authenticity"));
    assert!(
        failed(&r).1.contains("does not verify over"),
        "{}",
        failed(&r).1
    );

    // Tokens: for another imprint (another release's seal), and truncated.
    c.release(&["sign", &b2, "--key", "demo-keys/officer-2.key"])
        .success();
    std::fs::remove_file(other2.join("fed-v2.signatures/officer-3.json")).unwrap();
    c.release(&["seal", &b2]).success();
    let tsa = Tsa::start(&c.trusted, Mode::Honest);
    c.release(&["timestamp", &b2, "--tsa", &tsa.url]).success();
    let b = c.copy("token-swap");
    let tdir = b.with_file_name(format!("{NAME}.timestamps"));
    for e in std::fs::read_dir(&tdir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let foreign = std::fs::read_dir(other2.join("fed-v2.timestamps"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&foreign, tdir.join("foreign.tsr")).unwrap();
    let (code, r) = c.verify_at(&b);
    assert_eq!((code, failed(&r).0), (1, "time"));
    assert!(failed(&r).1.contains("other data"), "{}", failed(&r).1);
    let b = c.copy("token-truncated");
    let tdir = b.with_file_name(format!("{NAME}.timestamps"));
    let t = std::fs::read_dir(&tdir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&t).unwrap();
    std::fs::write(&t, &bytes[..bytes.len() - 10]).unwrap();
    let (code, r) = c.verify_at(&b);
    assert_eq!((code, failed(&r).0), (1, "time"));
}

#[test]
fn revoked_officers_count_only_when_a_timestamp_predates_a_retirement() {
    let c = Ceremony::new();
    let _tsas = c.sealed();
    // Revocation times have one-second resolution; make the timestamp strictly earlier.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let officer3 = c.g.key("officer-3").classical_public().key_id();
    for (label, reason, verdict) in [("retired", "retired", 0), ("compromised", "compromised", 1)] {
        let g2 = c.g.path(&format!("../gov-{label}"));
        assert!(Command::new("cp")
            .arg("-a")
            .arg(&c.g.dir)
            .arg(&g2)
            .status()
            .unwrap()
            .success());
        let t = |args: &[&str]| {
            let mut cmd = assert_cmd::Command::cargo_bin("treaty").unwrap();
            cmd.current_dir(&g2)
                .env("NO_COLOR", "1")
                .args(args)
                .assert()
        };
        t(&["key", "revoke", &officer3, "--reason", reason]).success();
        t(&["root", "sign", "--key", "demo-keys/root-1.key"]).success();
        t(&["root", "sign", "--key", "demo-keys/root-2.key"]).success();
        let git = |a: &[&str]| {
            assert!(Command::new("git")
                .args(a)
                .current_dir(&g2)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@x.invalid")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@x.invalid")
                .status()
                .unwrap()
                .success());
        };
        git(&["add", "-A"]);
        git(&["commit", "-qm", "revoke officer-3"]);
        let out = assert_cmd::Command::cargo_bin("treaty")
            .unwrap()
            .current_dir(&g2)
            .args(["release", "verify", &c.bundle(), "--format", "json"])
            .output()
            .unwrap();
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(verdict), "{label}: {r:#}");
        if verdict == 1 {
            assert_eq!(failed(&r).0, "authenticity");
        }
        // Without any timestamp, even a retired key no longer counts.
        let b = c.copy(&format!("untimed-{label}"));
        std::fs::remove_dir_all(b.with_file_name(format!("{NAME}.timestamps"))).unwrap();
        let out = assert_cmd::Command::cargo_bin("treaty")
            .unwrap()
            .current_dir(&g2)
            .args(["release", "verify", "--format", "json"])
            .arg(&b)
            .output()
            .unwrap();
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(failed(&r).0, "authenticity", "{label}: {r:#}");
    }
}

/// `treaty timestamp` on an approval: after its signer's key is retired, the approval still
/// counts (judged at the token's genTime); a compromise, a bad token or a stale token does not
/// save it.
#[test]
fn timestamped_approvals_outlive_a_retired_key_but_not_a_compromised_one() {
    let c = Ceremony::new();
    let g = &c.g;
    let tsa = Tsa::start(&c.trusted, Mode::Honest);
    let down = down_url();
    // The first authority is down: the next one is tried.
    let out = g
        .treaty()
        .args([
            "timestamp",
            &format!("{AKASH}.sig"),
            "--tsa",
            &down,
            "--tsa",
            &tsa.url,
            "--retries",
            "0",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("FAILED") && text.contains("ok,"), "{text}");
    assert!(g.path(&format!("{AKASH}.sig.tsr")).is_file());
    g.commit("timestamp the AKASH approval");
    assert_approved(g);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let akash1 = g.key("akash-1").classical_public().key_id();
    let revoke = |reason: &str| {
        g.treaty()
            .args(["key", "revoke", &akash1, "--reason", reason])
            .assert()
            .success();
        g.sign_root(&["root-1", "root-2"]);
        g.commit(&format!("akash-1 {reason}"));
    };
    revoke("retired");
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(file(&r, AKASH)["approved"], true, "{:#}", file(&r, AKASH));
    assert!(has(
        &r,
        "retired-key-timestamped",
        &format!("{AKASH}.sig.tsr")
    ));
    // A truncated token is ignored (and says so): the approval falls.
    let tsr = g.read(&format!("{AKASH}.sig.tsr"));
    g.write(&format!("{AKASH}.sig.tsr"), &tsr[..tsr.len() - 7]);
    g.commit("truncate the token");
    let (_, r) = g.verify(&[]);
    assert_eq!(file(&r, AKASH)["approved"], false);
    assert!(has(&r, "timestamp-invalid", &format!("{AKASH}.sig.tsr")));
    // A token over an earlier envelope (a signature was added since) is stale.
    g.write(&format!("{AKASH}.sig.tsr"), &tsr);
    let mut env = g.envelope_of(AKASH);
    env.signatures.push(treaty::dsse::Signature {
        keyid: "00".repeat(32),
        sig: vec![1; 64],
    });
    g.put_envelope(AKASH, &env);
    g.commit("a signature added after the timestamp");
    let (_, r) = g.verify(&[]);
    assert_eq!(file(&r, AKASH)["approved"], false);
    let f = file(&r, AKASH);
    assert!(
        f["findings"]
            .to_string()
            .contains("earlier version of the envelope"),
        "{f:#}"
    );
    // Restore the stamped envelope; then the key turns out compromised: nothing saves it.
    g.git(&[
        "checkout",
        "HEAD~2",
        "--",
        &format!("{AKASH}.sig"),
        &format!("{AKASH}.sig.tsr"),
    ]);
    g.commit("restore");
    let (_, r) = g.verify(&[]);
    assert_eq!(file(&r, AKASH)["approved"], true);
    revoke("compromised");
    let (_, r) = g.verify(&[]);
    assert_eq!(file(&r, AKASH)["approved"], false, "{:#}", file(&r, AKASH));
}

/// `@sigstore/verify` (sigstore-js, which this project did not write) on one bundle, with trust
/// stated here independently of treaty: the member's key from its member entry, the test TSA's
/// certificate chain. `TREATY_SIGSTORE_NODE_PATH` (set by .ci/setup) holds the pinned packages;
/// without it the test fails rather than skips.
pub(crate) fn sigstore_js(bundle: &Path, alg: &str, key_b64: &str, ca: &Ca) -> (bool, String) {
    sigstore_js_as("key", bundle, alg, key_b64, ca)
}

/// [`sigstore_js`] in a given mode: `key`, or `key-at-hint` (the key registered under the
/// bundle's own hint, so a bundle naming another key reaches the signature check).
fn sigstore_js_as(mode: &str, bundle: &Path, alg: &str, key_b64: &str, ca: &Ca) -> (bool, String) {
    let modules = std::env::var("TREATY_SIGSTORE_NODE_PATH")
        .expect("TREATY_SIGSTORE_NODE_PATH: run through .ci/test (it installs @sigstore/verify)");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/sigstore/verify.js");
    let out = Command::new("node")
        .env("NODE_PATH", modules)
        .arg(script)
        .arg(mode)
        .arg(bundle)
        .args([alg, key_b64])
        .arg(ca.dir.join("tsa.crt"))
        .arg(ca.dir.join("ca.crt"))
        .output()
        .expect("node is installed (.ci/setup)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{text}");
    (out.status.success(), text)
}

fn b64e() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Flips one bit in the middle of a base64 field.
fn flip(s: &str) -> String {
    use base64::Engine as _;
    let mut b = b64e().decode(s).unwrap();
    let n = b.len() / 2;
    b[n] ^= 1;
    b64e().encode(b)
}

#[test]
fn sealed_signatures_export_as_sigstore_bundles_an_outside_verifier_accepts() {
    use base64::Engine as _;
    let c = Ceremony::new();
    let (_a, _b) = c.sealed();
    let tsa = Tsa::start(&c.trusted, Mode::Honest);
    c.release(&["sigstore", &c.bundle(), "--tsa", &tsa.url])
        .success();
    let dir = c.dist.join(format!("{NAME}.sigstore"));
    let other = c.g.json("demo-keys/officer-2.pub.json");
    let other = other["ed25519"].as_str().unwrap().to_owned();
    for officer in ["officer-1", "officer-3"] {
        let f = dir.join(format!("{officer}.sigstore.json"));
        let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        assert_eq!(
            b["mediaType"],
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        );
        assert_eq!(b["dsseEnvelope"]["signatures"].as_array().unwrap().len(), 1);
        let member = c.g.json(&format!("demo-keys/{officer}.pub.json"));
        let key = member["ed25519"].as_str().unwrap();
        let (ok, text) = sigstore_js(&f, "ed25519", key, &c.trusted);
        assert!(ok, "{officer}: {text}");
        // The OK is not vacuous: another member's key under the bundle's hint fails the
        // signature check, another authority's chain the timestamp check, and another key
        // under its own id is not even found.
        let (ok, text) = sigstore_js_as("key-at-hint", &f, "ed25519", &other, &c.trusted);
        assert!(!ok && text.contains("FAIL SIGNATURE_ERROR"), "{text}");
        let (ok, text) = sigstore_js(&f, "ed25519", key, &c.second);
        assert!(!ok && text.contains("FAIL TIMESTAMP_ERROR"), "{text}");
        let (ok, text) = sigstore_js(&f, "ed25519", &other, &c.trusted);
        assert!(!ok && text.contains("FAIL PUBLIC_KEY_ERROR"), "{text}");
    }
    assert!(
        !dir.join("officer-2.sigstore.json").exists(),
        "officer-2 did not sign"
    );
    // treaty release verify finds and checks them.
    let (code, r) = c.verify_json(&[]);
    assert_eq!(code, 0, "{r:#}");
    let layer = release_layer(&r, "sigstore");
    assert_eq!(layer["ok"], true, "{r:#}");
    assert!(layer["detail"]
        .as_str()
        .unwrap()
        .contains("2 Sigstore bundle(s)"));

    // Each kind of altered bundle: treaty refuses it (exit 1, the sigstore layer); the outside
    // verifier, where asked, with the code of the check it stops at (sigstore-js checks the
    // timestamp first, then the key, then the signature: a flipped signature stops at the
    // timestamp, which covers the original bytes).
    let honest = std::fs::read(dir.join("officer-1.sigstore.json")).unwrap();
    let base: serde_json::Value = serde_json::from_slice(&honest).unwrap();
    let sig_of = |v: &serde_json::Value| {
        b64e()
            .decode(v["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap())
            .unwrap()
    };
    let ts_path = [
        "verificationMaterial",
        "timestampVerificationData",
        "rfc3161Timestamps",
    ];
    let set_ts = |v: &mut serde_json::Value, resp: &[u8]| {
        v[ts_path[0]][ts_path[1]][ts_path[2]][0]["signedTimestamp"] = b64e().encode(resp).into();
    };
    let mut cases: Vec<(&str, serde_json::Value, Option<&str>)> = Vec::new();
    let mut v = base.clone();
    v["dsseEnvelope"]["signatures"][0]["sig"] =
        flip(v["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap()).into();
    cases.push(("a flipped signature", v, Some("TIMESTAMP_ERROR")));
    let mut v = base.clone();
    v["dsseEnvelope"]["payload"] = flip(v["dsseEnvelope"]["payload"].as_str().unwrap()).into();
    cases.push(("another statement", v, Some("SIGNATURE_ERROR")));
    // A real token from an approved authority, over other bytes: the seal's own timestamp.
    let seal_tsr = std::fs::read_dir(c.dist.join(format!("{NAME}.timestamps")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "tsr"))
        .unwrap();
    let mut v = base.clone();
    set_ts(&mut v, &std::fs::read(&seal_tsr).unwrap());
    cases.push((
        "a valid timestamp over other bytes",
        v,
        Some("TIMESTAMP_ERROR"),
    ));
    // A token over the right bytes from an authority keys/tsa-roots.pem does not approve.
    let rogue_ca = Ca::new(&c.g.path("../cas"), "tsa-rogue", 365);
    let rogue = Tsa::start(&rogue_ca, Mode::Honest);
    let req = treaty::tsp::request(&sig_of(&base)).unwrap();
    let resp = treaty::tsp::Client::default()
        .post(&rogue.url, &req.der)
        .unwrap();
    let mut v = base.clone();
    set_ts(&mut v, &resp);
    cases.push((
        "a timestamp by an authority not approved",
        v,
        Some("TIMESTAMP_ERROR"),
    ));
    let mut v = base.clone();
    v[ts_path[0]][ts_path[1]][ts_path[2]] = serde_json::json!([]);
    cases.push(("no timestamp", v, Some("TIMESTAMP_ERROR")));
    let officer2 = c.g.key("officer-2");
    let kid2 = officer2.classical_public().key_id();
    let mut v = base.clone();
    v["verificationMaterial"]["publicKey"]["hint"] = kid2.clone().into();
    v["dsseEnvelope"]["signatures"][0]["keyid"] = kid2.clone().into();
    cases.push(("officer-1's signature under officer-2's key", v, None));
    // officer-2 did not sign the seal: a genuine signature of theirs over the statement is not
    // a view of a counted one (treaty refuses; sigstore-js, which knows no seal, could not).
    let payload = b64e()
        .decode(base["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let sig2 = officer2
        .sign_classical(&treaty::dsse::pae(treaty::dsse::PAYLOAD_TYPE, &payload))
        .unwrap();
    let mut v = base.clone();
    v["verificationMaterial"]["publicKey"]["hint"] = kid2.clone().into();
    v["dsseEnvelope"]["signatures"][0] =
        serde_json::json!({ "sig": b64e().encode(sig2), "keyid": kid2 });
    cases.push(("a member the seal did not count", v, None));
    let mut v = base.clone();
    let s = v["dsseEnvelope"]["signatures"][0].clone();
    v["dsseEnvelope"]["signatures"] = serde_json::json!([s.clone(), s]);
    cases.push(("two signatures", v, None));
    let mut v = base.clone();
    v["verificationMaterial"]["tlogEntries"] = serde_json::json!([{}]);
    cases.push(("a transparency-log entry treaty does not check", v, None));
    let mut v = base.clone();
    v["extra"] = true.into();
    cases.push(("an unknown field", v, None));
    for (what, v, outside) in cases {
        std::fs::write(
            dir.join("officer-1.sigstore.json"),
            serde_json::to_vec(&v).unwrap(),
        )
        .unwrap();
        let (code, r) = c.verify_json(&[]);
        assert_eq!(code, 1, "{what}: {r:#}");
        assert_eq!(failed(&r).0, "sigstore", "{what}: {r:#}");
        if let Some(code) = outside {
            let member = c.g.json("demo-keys/officer-1.pub.json");
            let (ok, text) = sigstore_js(
                &dir.join("officer-1.sigstore.json"),
                "ed25519",
                member["ed25519"].as_str().unwrap(),
                &c.trusted,
            );
            assert!(
                !ok && text.contains(&format!("FAIL {code}")),
                "{what}: {text}"
            );
        }
    }
    // A FIFO named like a bundle is refused, not waited on.
    std::fs::write(dir.join("officer-1.sigstore.json"), &honest).unwrap();
    let fifo = dir.join("zz.sigstore.json");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (code, r) = c.verify_json(&[]);
    assert_eq!((code, failed(&r).0), (1, "sigstore"), "{r:#}");
    std::fs::remove_file(&fifo).unwrap();
    assert_eq!(c.verify_json(&[]).0, 0);

    // An approval's signatures: one bundle per member whose signature counted, each accepted
    // by the outside verifier under that member's key.
    let out = c.g.path("../sigstore-approvals");
    c.g.treaty()
        .args([
            "sigstore",
            "treaties/AURORA-AKASH-001.json",
            "--tsa",
            &tsa.url,
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let mut members = Vec::new();
    for e in std::fs::read_dir(&out).unwrap() {
        let f = e.unwrap().path();
        let name = f.file_name().unwrap().to_str().unwrap().to_owned();
        let member = name
            .strip_prefix("treaties%2FAURORA-AKASH-001.json.")
            .and_then(|r| r.strip_suffix(".sigstore.json"))
            .unwrap()
            .to_owned();
        let entry = c.g.json(&format!("demo-keys/{member}.pub.json"));
        let (ok, text) = sigstore_js(
            &f,
            "ed25519",
            entry["ed25519"].as_str().unwrap(),
            &c.trusted,
        );
        assert!(ok, "{member}: {text}");
        members.push(member);
    }
    assert!(
        members.len() >= 3 && members.iter().any(|m| m.starts_with("akash-")),
        "{members:?}"
    );
    // A file that is not approved is not exported.
    c.g.write("treaties/AURORA-AKASH-001.json", b"{}\n");
    c.g.commit("break the AKASH treaty");
    let o =
        c.g.treaty()
            .args([
                "sigstore",
                "treaties/AURORA-AKASH-001.json",
                "--tsa",
                &tsa.url,
                "--out",
            ])
            .arg(c.g.path("../sigstore-broken"))
            .output()
            .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!c.g.path("../sigstore-broken").exists());
}
