//! The checked-in spec vectors (tests/vectors, docs/spec.md § 8) are what this generator writes,
//! and this build of treaty judges each as the case says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

use serde_json::Value;

/// The checked-in spec vectors (tests/vectors, docs/spec.md §8) agree with this build.
#[test]
fn checked_in_spec_vectors_agree_with_this_build() {
    use std::collections::BTreeMap;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    let dec = |v: &Value| treaty::crypto::unb64(v.as_str().unwrap()).unwrap();
    let files_of = |m: &Value| -> BTreeMap<String, Vec<u8>> {
        m.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), dec(v)))
            .collect()
    };
    let base_v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("base.json")).unwrap()).unwrap();
    let base = files_of(&base_v["files"]);
    let apply = |c: &Value| {
        let set = files_of(&c["set"]);
        let remove: Vec<String> = c["remove"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        treaty_vectors::apply(&base, &set, &remove)
    };
    let mut n = 0;
    for e in std::fs::read_dir(dir.join("cases")).unwrap() {
        let c: Value = serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
        let files = apply(&c);
        let parent = c.get("parent").map(&apply);
        let trust = c.get("trust").map(dec);
        let r = treaty_vectors::judge(
            &files,
            parent.as_ref(),
            trust.as_deref(),
            c["at"].as_str().unwrap(),
        )
        .unwrap();
        let name = c["name"].as_str().unwrap();
        assert_eq!(Value::Bool(r.approved), c["expect"]["approved"], "{name}");
        if let Some(reason) = c["expect"]["reason"].as_str() {
            assert!(
                treaty_vectors::report_codes(&r).contains(&reason),
                "{name}: expected {reason}"
            );
        }
        for (p, want) in c["expect"]["files"].as_object().unwrap() {
            let got = r.files.iter().find(|v| &v.path == p).map(|v| v.approved);
            assert_eq!(got.map(Value::Bool).as_ref(), Some(want), "{name}: {p}");
        }
        n += 1;
    }
    assert!(n >= 53, "only {n} cases");
}

/// Regeneration is deterministic (fixed public seeds, deterministic ML-DSA signing), and the
/// checked-in vectors are exactly what this build generates: a change that alters a vector
/// without regenerating them fails here, and a regeneration is a reviewable diff, not noise.
#[test]
fn spec_vectors_regenerate_byte_identically_to_the_checked_in_set() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    let out = tempfile::tempdir().unwrap();
    let n = treaty_vectors::generate(out.path()).unwrap();
    let listing = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d.join("cases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let names = listing(out.path());
    assert_eq!(names.len(), n);
    assert_eq!(names, listing(&dir), "cases added or removed: regenerate");
    let messages = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d.join("messages"))
            .unwrap()
            .map(|e| format!("messages/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        v.sort();
        v
    };
    let fresh = messages(out.path());
    assert!(fresh.len() >= 25, "only {} message vectors", fresh.len());
    assert_eq!(
        fresh,
        messages(&dir),
        "message vectors added or removed: regenerate"
    );
    for rel in std::iter::once("base.json".to_owned())
        .chain(names.iter().map(|c| format!("cases/{c}")))
        .chain(fresh)
    {
        assert!(
            std::fs::read(out.path().join(&rel)).unwrap() == std::fs::read(dir.join(&rel)).unwrap(),
            "{rel} differs from a fresh generation: run `cargo run -p treaty-vectors -- --out tests/vectors`"
        );
    }
}

/// Every message vector gets its stated verdict from this build's verifier and parsers (the
/// generator refuses to write one it does not; this holds the checked-in files to it).
#[test]
fn message_vectors_get_their_verdicts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/messages");
    let mut n = 0;
    let mut reasons = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let c: Value = serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
        let kind = match c["kind"].as_str().unwrap() {
            "order" => treaty::law::message::Kind::Order,
            "ack" => treaty::law::message::Kind::Ack,
            _ => treaty::law::message::Kind::Attestation,
        };
        let env = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            c["envelope"].as_str().unwrap(),
        )
        .unwrap();
        let members: Vec<treaty::governance::model::MemberEntry> =
            serde_json::from_value(c["signers"].clone()).unwrap();
        let v = treaty_vectors::messages::judge_members(&env, kind, members).unwrap();
        assert_eq!(v.reason(), c["expect"]["reason"], "{}", c["name"]);
        reasons.insert(c["expect"]["reason"].to_string());
        n += 1;
    }
    assert!(n >= 25, "only {n}");
    assert_eq!(reasons.len(), 5, "every verdict has a vector: {reasons:?}");
}
