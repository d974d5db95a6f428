//! TPM-resident member keys against a real software TPM (`swtpm`, started here on loopback):
//! a member whose classical half never leaves the TPM is enrolled, approves a treaty and seals a
//! release through the CLI; and every way the TPM can be missing or wrong is an error (exit 2),
//! never a software fallback (docs/security.md § TPM-resident keys).

use crate::common::*;
use std::process::{Child, Command, Stdio};
use treaty::crypto::{KeyError, SigningKey};
use treaty::tpm::TpmError;

/// A `swtpm` on two loopback ports with its own state directory; killed on drop. A missing
/// `swtpm` fails the test (CI installs it in .ci/setup): it is never skipped.
struct Swtpm {
    child: Child,
    tcti: String,
    _state: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Swtpm {
    fn start() -> Swtpm {
        let state = tempfile::tempdir().unwrap();
        // The swtpm TCTI finds the control channel at the command port + 1.
        let port = (0..100)
            .map(|_| free_port())
            .find(|p| *p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok())
            .expect("two adjacent free loopback ports");
        let ctrl = port + 1;
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", state.path().display()))
            .args([
                "--server",
                &format!("type=tcp,port={port},bindaddr=127.0.0.1"),
            ])
            .args([
                "--ctrl",
                &format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"),
            ])
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("swtpm is not installed (Debian: swtpm; .ci/setup installs it)");
        let t0 = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed().as_secs() < 20, "swtpm did not listen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Swtpm {
            child,
            tcti: format!("swtpm:host=127.0.0.1,port={port}"),
            _state: state,
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Loads a TPM key file through the test's software TPM (named by the caller, as an operator
/// would with TREATY_TPM_TCTI).
fn load_at(path: &std::path::Path, tpm: &Swtpm) -> SigningKey {
    let f: treaty::crypto::KeyFile = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    SigningKey::from_file_with_tcti(&f, &path.display().to_string(), &tpm.tcti, || {
        Ok(String::new())
    })
    .unwrap()
}

fn gen(g: &Gov, id: &str, tpm: &Swtpm) {
    g.treaty()
        .args([
            "key",
            "gen",
            "--id",
            id,
            "--out",
            "demo-keys",
            "--tpm",
            "--tcti",
        ])
        .arg(&tpm.tcti)
        .arg("--insecure-unencrypted")
        .assert()
        .success()
        .stdout(predicates::str::contains("ecdsa-p256 key id:"));
}

fn enroll(g: &Gov, group: &str, id: &str) {
    g.treaty()
        .args(["group", "add-member", group, "--member"])
        .arg(format!("demo-keys/{id}.pub.json"))
        .assert()
        .success();
    g.sign_root(&["root-1", "root-2"]);
}

const TREATIES: [&str; 7] = [
    "AKASH", "IONET", "RENDER", "FLUX", "AETHIR", "VASTAI", "SALAD",
];

#[test]
fn a_tpm_member_approves_a_treaty_and_seals_a_release_and_fails_closed_without_its_tpm() {
    let tpm = Swtpm::start();
    let g = Gov::demo();
    gen(&g, "council-4", &tpm);
    let member = g.json("demo-keys/council-4.pub.json");
    assert!(member.get("ed25519").is_none() && member["p256"].is_string());
    let kf = g.json("demo-keys/council-4.key");
    assert_eq!(kf["protection"]["scheme"], "tpm2");
    enroll(&g, "council", "council-4");

    // Every council-governed file, approved again: council-1 and each provider through the
    // usual keys, council-4 through the TPM, all its files in one `treaty sign`.
    let mut files: Vec<String> = TREATIES
        .iter()
        .map(|t| format!("treaties/AURORA-{t}-001.json"))
        .collect();
    files.push("policies/default.json".into());
    for (f, t) in files.iter().zip(TREATIES.iter().map(Some).chain([None])) {
        let prov = t.map(|t| format!("{}-1", t.to_lowercase()));
        let mut ids = vec!["council-1"];
        ids.extend(prov.as_deref());
        g.sign(f, &ids);
    }
    // The key file records the software TPM; a key file may only name the kernel's TPM, so the
    // operator names this one (TREATY_TPM_TCTI) for every command that signs with it.
    let without = g
        .treaty()
        .args([
            "sign",
            "policies/default.json",
            "--key",
            "demo-keys/council-4.key",
        ])
        .output()
        .unwrap();
    assert_eq!(without.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&without.stderr).contains("TREATY_TPM_TCTI"));
    g.treaty()
        .env("TREATY_TPM_TCTI", &tpm.tcti)
        .arg("sign")
        .args(&files)
        .args(["--key", "demo-keys/council-4.key"])
        .assert()
        .success();
    g.commit("onboard council-4, whose key is in a TPM");
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
    let council = file(&r, "treaties/AURORA-AKASH-001.json")["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "council")
        .unwrap()
        .clone();
    assert_eq!(
        council["signed"],
        serde_json::json!(["council-1", "council-4"])
    );
    // Its envelope entries: a 64-byte P-256 signature and an ML-DSA-65 one.
    let env = g.envelope_of("treaties/AURORA-AKASH-001.json");
    let k = load_at(&g.path("demo-keys/council-4.key"), &tpm);
    assert!(k.in_tpm());
    let kid = k.classical_public().key_id();
    let entry = env.signatures.iter().find(|s| s.keyid == kid).unwrap();
    assert_eq!(entry.sig.len(), 64);

    // A release sealed by a TPM officer and a file-key officer, with an approved timestamp
    // authority for its Sigstore bundles.
    gen(&g, "officer-4", &tpm);
    enroll(&g, "release", "officer-4");
    let ca = crate::tsa::Ca::new(&g.path("../cas"), "tsa-a", 365);
    g.write(
        "keys/tsa-roots.pem",
        format!(
            "# Trusted RFC 3161 authority roots (treaty governed file)\n# spec_version: 1.0\n# version: 1\n{}",
            ca.root_pem()
        ),
    );
    g.sign("keys/tsa-roots.pem", &["root-1", "root-2"]);
    g.commit("officer-4, in a TPM; a timestamp authority");
    let dist = g.path("../dist");
    g.treaty()
        .args(["release", "bundle", "--name", "r1", "--out"])
        .arg(&dist)
        .assert()
        .success();
    let bundle = dist.join("r1").display().to_string();
    for officer in ["officer-4", "officer-1"] {
        g.treaty()
            .env("TREATY_TPM_TCTI", &tpm.tcti)
            .args(["release", "sign", &bundle, "--key"])
            .arg(format!("demo-keys/{officer}.key"))
            .assert()
            .success();
    }
    g.treaty()
        .args(["release", "seal", &bundle])
        .assert()
        .success();
    let out = g
        .treaty()
        .args(["release", "verify", &bundle, "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let auth = &v["layers"][1];
    assert_eq!(auth["ok"], true, "{v:#}");
    assert!(
        auth["detail"].as_str().unwrap().contains("officer-4"),
        "{v:#}"
    );
    // Its P-256 signature as a Sigstore bundle (DER ECDSA): treaty's check and sigstore-js
    // both accept it under the member's P-256 key.
    let tsa = crate::tsa::Tsa::start(&ca, crate::tsa::Mode::Honest);
    g.treaty()
        .args(["release", "sigstore", &bundle, "--tsa", &tsa.url])
        .assert()
        .success();
    let f = dist.join("r1.sigstore/officer-4.sigstore.json");
    let p256 = g.json("demo-keys/officer-4.pub.json")["p256"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, text) = crate::ceremony::sigstore_js(&f, "ecdsa-p256", &p256, &ca);
    assert!(ok, "{text}");
    let out = g
        .treaty()
        .args(["release", "verify", &bundle, "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layer = release_layer(&v, "sigstore");
    assert_eq!(layer["ok"], true, "{v:#}");

    // The audit log (where the seal was logged) checkpointed by a TPM member of the log group:
    // its note line is C2SP ECDSA (0x02), and `audit verify` accepts it.
    gen(&g, "ci-2", &tpm);
    enroll(&g, "automation", "ci-2");
    g.commit("ci-2, in a TPM");
    g.treaty()
        .env("TREATY_TPM_TCTI", &tpm.tcti)
        .args(["audit", "checkpoint", "--key", "demo-keys/ci-2.key"])
        .assert()
        .success();
    g.treaty().args(["audit", "verify"]).assert().success();
    // The outside verifier (tests/reference/audit.py, standard library only) checks the 0x02
    // line too: SPKI key id, DER ECDSA over the checkpoint text.
    let export = crate::audit::export_log(&g, "audit-export");
    let out = crate::audit::outside(Some(&g.dir), &[&export]);
    assert!(out.status.success(), "{}", crate::audit::said(&out));

    // Fail closed: no TPM there, another TPM, the file's public half swapped. Each is exit 2
    // with the reason, and nothing is signed.
    let before = g.read("treaties/AURORA-AKASH-001.json.sig");
    let dead = format!("swtpm:host=127.0.0.1,port={}", free_port());
    let other = Swtpm::start();
    for (tcti, says) in [
        (dead.as_str(), "cannot open the TPM"),
        (other.tcti.as_str(), "does not hold this key"),
    ] {
        let out = g
            .treaty()
            .env("TREATY_TPM_TCTI", tcti)
            .args(["sign", "treaties/AURORA-AKASH-001.json", "--key"])
            .arg("demo-keys/council-4.key")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{tcti}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{tcti}: {err}");
    }
    assert_eq!(g.read("treaties/AURORA-AKASH-001.json.sig"), before);
    // The honest case again, so the refusals above were about the TPM and not the file.
    assert!(load_at(&g.path("demo-keys/council-4.key"), &tpm).in_tpm());
}

/// The key file cannot be bent: its public half swapped for another TPM key's, its ML-DSA
/// ciphertext altered, its parent renamed: each refused at load, the honest file loads.
#[test]
fn a_tampered_tpm_key_file_is_refused() {
    let tpm = Swtpm::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, fa) = SigningKey::generate_tpm("a", &tpm.tcti, None).unwrap();
    let (_, fb) = SigningKey::generate_tpm("b", &tpm.tcti, None).unwrap();
    let load = |f: &treaty::crypto::KeyFile| {
        SigningKey::from_file_with_tcti(f, "k", &tpm.tcti, || Ok(String::new()))
    };
    // The file alone cannot choose this (software) TPM: only the kernel's.
    let e = SigningKey::from_file(&fa, "k", || panic!("no passphrase is asked for")).unwrap_err();
    assert!(
        matches!(
            e,
            KeyError::Tpm {
                source: TpmError::RecordedTcti { .. },
                ..
            }
        ),
        "{e}"
    );
    let honest = load(&fa).unwrap();
    assert_eq!(honest.classical_public(), a.classical_public());
    let sig = honest.sign(b"m").unwrap();
    assert!(sig.iter().all(|s| s.key.verify(b"m", &s.sig)));

    let mut swapped = fa.clone();
    swapped.public.p256 = fb.public.p256.clone();
    let e = load(&swapped).unwrap_err();
    assert!(
        matches!(
            e,
            KeyError::Tpm {
                source: TpmError::WrongKey { .. },
                ..
            }
        ),
        "{e}"
    );
    let mut altered = fa.clone();
    let mut ct = treaty::crypto::unb64(&altered.secret).unwrap();
    ct[5] ^= 1;
    altered.secret = treaty::crypto::b64(&ct);
    assert!(load(&altered)
        .unwrap_err()
        .to_string()
        .contains("does not decrypt"));
    let mut renamed = fa.clone();
    if let treaty::crypto::KeyProtection::Tpm2 { parent, .. } = &mut renamed.protection {
        *parent = "owner/rsa-2048-srk".into();
    }
    assert!(load(&renamed).unwrap_err().to_string().contains("parent"));
    drop(dir);
}

/// A passphrase-protected TPM key: the right passphrase signs, a wrong one is refused by the
/// TPM (not by a file check), and repeated wrong ones put the TPM into dictionary-attack lockout,
/// after which even the right passphrase is refused, with an error that says so.
#[test]
fn wrong_passphrases_run_into_the_tpms_lockout() {
    let tpm = Swtpm::start();
    let (_, f) = SigningKey::generate_tpm("p", &tpm.tcti, Some("right")).unwrap();
    let with = |p: &'static str| {
        SigningKey::from_file_with_tcti(&f, "k", &tpm.tcti, move || Ok(p.to_owned()))
    };
    assert!(with("right").is_ok());
    let mut refused = 0;
    let mut locked = false;
    for _ in 0..64 {
        match with("wrong") {
            Err(KeyError::Tpm {
                source: TpmError::BadPassphrase { .. },
                ..
            }) => refused += 1,
            Err(KeyError::Tpm {
                source: TpmError::Lockout { .. },
                ..
            }) => {
                locked = true;
                break;
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert!(
        refused >= 1 && locked,
        "{refused} refusals, locked {locked}"
    );
    let e = with("right").unwrap_err();
    assert!(e.to_string().contains("lockout"), "{e}");
}
