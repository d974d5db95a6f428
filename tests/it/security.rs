//! Each attack from the security model: a test that proves it is rejected, beside a test
//! that proves the honest case passes. They run the real binary on real repositories.

use crate::common::*;
use treaty::crypto::{b64, unb64};
use treaty::statement::Statement;

fn bump_quota(g: &Gov, rel: &str, version: u64) {
    let mut t = g.json(rel);
    t["version"] = version.into();
    t["quotas"]["concurrent_jobs"] = (100 + version).into();
    g.write_json(rel, &t);
}

#[test]
fn honest_demo_federation_is_approved() {
    let g = Gov::demo();
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
    assert_eq!(r["summary"]["unapproved"], 0);
    let akash = file(&r, AKASH);
    assert_eq!(akash["approved"], true);
    assert_eq!(akash["governed_by"], "delegation treaties-akash");
}

#[test]
fn honest_update_signed_by_both_groups_is_approved() {
    let g = Gov::demo();
    bump_quota(&g, AKASH, 2);
    g.sign(AKASH, &["council-1", "council-3", "akash-2"]);
    g.commit("akash v2");
    assert_approved(&g);
}

#[test]
fn forged_signature_is_rejected() {
    let g = Gov::demo();
    let mut e = g.envelope_of(AKASH);
    // Keep akash-1's key ids as hints, but the signatures come from an outsider's keys.
    let outsider = treaty::crypto::SigningKey::generate("mallory").unwrap();
    let pae = e.signed_bytes();
    let forged = outsider.sign(&pae).unwrap();
    let akash1 = g.key("akash-1");
    for s in &mut e.signatures {
        if s.keyid == akash1.classical_public().key_id() {
            s.sig = forged[0].sig.clone();
        }
        if Some(s.keyid.clone()) == akash1.mldsa_public().map(|k| k.key_id()) {
            s.sig = forged[1].sig.clone();
        }
    }
    g.put_envelope(AKASH, &e);
    g.commit("forged");
    let r = assert_rejected(&g, &[], "threshold-not-met", AKASH);
    assert!(has(&r, "invalid-signature", &format!("{AKASH}.sig")));
}

#[test]
fn content_altered_after_signing_is_rejected() {
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["quotas"]["gpu_hours_per_day"] = 999_999.into();
    g.write_json(AKASH, &t);
    g.commit("quietly raise the quota");
    let r = assert_rejected(&g, &[], "digest-mismatch", AKASH);
    assert!(has(&r, "version-equivocation", AKASH));
}

#[test]
fn signer_outside_the_required_groups_is_refused_and_does_not_count() {
    let g = Gov::demo();
    bump_quota(&g, AKASH, 2);
    // The CLI refuses to sign with a key outside the required groups…
    g.treaty()
        .args(["sign", AKASH, "--key", "demo-keys/ionet-1.key"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "not a member of any required group",
        ));
    // …and a hand-made envelope with that key in place of akash's does not count.
    let stmt = Statement::new(
        AKASH,
        &g.read(AKASH),
        2,
        g.refs(&["akash", "council"]),
        None,
    );
    g.put_envelope(
        AKASH,
        &g.envelope(&stmt, &["council-1", "council-2", "ionet-1"]),
    );
    g.commit("ionet signs for akash");
    let r = assert_rejected(&g, &[], "threshold-not-met", AKASH);
    let akash = file(&r, AKASH)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "akash")
        .unwrap()
        .clone();
    assert_eq!(akash["signed"].as_array().unwrap().len(), 0);
}

#[test]
fn one_member_with_two_entries_is_counted_once() {
    let g = Gov::demo();
    bump_quota(&g, AKASH, 2);
    let stmt = Statement::new(
        AKASH,
        &g.read(AKASH),
        2,
        g.refs(&["akash", "council"]),
        None,
    );
    // council-1 signs twice (randomised ML-DSA gives distinct entries); council needs 2.
    let mut e = g.envelope(&stmt, &["council-1", "akash-1"]);
    let again = g.envelope(&stmt, &["council-1"]);
    e.signatures.extend(again.signatures);
    g.put_envelope(AKASH, &e);
    g.commit("council-1 twice");
    let r = assert_rejected(&g, &[], "threshold-not-met", AKASH);
    let council = file(&r, AKASH)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "council")
        .unwrap()
        .clone();
    assert_eq!(council["signed"], serde_json::json!(["council-1"]));
}

#[test]
fn entries_with_wrong_keyid_hints_still_count_when_they_verify() {
    let g = Gov::demo();
    let mut e = g.envelope_of(AKASH);
    for s in &mut e.signatures {
        s.keyid = String::new();
    }
    g.put_envelope(AKASH, &e);
    g.commit("hints stripped");
    assert_approved(&g);
}

#[test]
fn envelope_copied_to_another_path_is_rejected() {
    let g = Gov::demo();
    g.write(&format!("{IONET}.sig"), g.read(&format!("{AKASH}.sig")));
    g.commit("mix and match");
    let r = assert_rejected(&g, &[], "subject-mismatch", &format!("{IONET}.sig"));
    assert!(has(&r, "digest-mismatch", IONET));
}

#[test]
fn envelope_from_an_older_version_is_rejected() {
    let g = Gov::demo();
    let old_sig = g.read(&format!("{AKASH}.sig"));
    bump_quota(&g, AKASH, 2);
    g.write(&format!("{AKASH}.sig"), old_sig);
    g.commit("v2 with v1's approval");
    let r = assert_rejected(
        &g,
        &[],
        "statement-version-mismatch",
        &format!("{AKASH}.sig"),
    );
    assert!(has(&r, "digest-mismatch", AKASH));
}

#[test]
fn statement_naming_fewer_groups_than_required_is_rejected() {
    let g = Gov::demo();
    bump_quota(&g, AKASH, 2);
    let stmt = Statement::new(AKASH, &g.read(AKASH), 2, g.refs(&["council"]), None);
    g.put_envelope(
        AKASH,
        &g.envelope(&stmt, &["council-1", "council-2", "akash-1"]),
    );
    g.commit("only council named");
    assert_rejected(
        &g,
        &[],
        "statement-groups-mismatch",
        &format!("{AKASH}.sig"),
    );
}

#[test]
fn hybrid_member_with_only_one_of_two_signatures_does_not_count() {
    for drop_mldsa in [true, false] {
        let g = Gov::demo();
        let k = g.key("akash-1");
        let drop = if drop_mldsa {
            k.mldsa_public().unwrap().key_id()
        } else {
            k.classical_public().key_id()
        };
        let mut e = g.envelope_of(AKASH);
        e.signatures.retain(|s| s.keyid != drop);
        g.put_envelope(AKASH, &e);
        g.commit("half a hybrid signature");
        let r = assert_rejected(&g, &[], "threshold-not-met", AKASH);
        assert!(
            has(&r, "hybrid-incomplete", &format!("{AKASH}.sig")),
            "{:#?}",
            codes(&r)
        );
    }
}

#[test]
fn version_lower_than_the_parent_is_a_rollback() {
    let g = Gov::demo();
    let v1 = (g.read(AKASH), g.read(&format!("{AKASH}.sig")));
    bump_quota(&g, AKASH, 2);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("v2");
    assert_approved(&g);
    // Restore v1, validly signed back then: every signature verifies, but it is a rollback.
    g.write(AKASH, &v1.0);
    g.write(&format!("{AKASH}.sig"), &v1.1);
    g.commit("roll back to v1");
    assert_rejected(&g, &[], "version-rollback", AKASH);
}

#[test]
fn same_version_with_different_bytes_is_equivocation_even_when_signed() {
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["quotas"]["concurrent_jobs"] = 1.into();
    g.write_json(AKASH, &t);
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("same version, new content");
    assert_rejected(&g, &[], "version-equivocation", AKASH);
}

#[test]
fn expired_approval_is_rejected_and_unexpired_passes() {
    let g = Gov::demo();
    bump_quota(&g, AKASH, 2);
    for id in ["council-1", "council-2", "akash-1"] {
        g.treaty()
            .args([
                "sign",
                AKASH,
                "--key",
                &format!("demo-keys/{id}.key"),
                "--expires",
                "2027-06-01T00:00:00Z",
            ])
            .assert()
            .success();
    }
    g.commit("short approval");
    let (code, _) = g.verify(&["--at", "2027-05-31T00:00:00Z"]);
    assert_eq!(code, 0);
    assert_rejected(
        &g,
        &["--at", "2027-06-01T00:00:00Z"],
        "approval-expired",
        &format!("{AKASH}.sig"),
    );
}

#[test]
fn expired_root_freezes_everything() {
    let g = Gov::demo();
    let r = assert_rejected(
        &g,
        &["--at", "2040-01-01T00:00:00Z"],
        "root-expired",
        "keys/root.json",
    );
    assert_eq!(r["trust"]["chain_ok"], false);
    assert_eq!(r["summary"]["approved"], 0);
}

#[test]
fn revoked_key_counts_for_nothing_until_another_member_signs() {
    let g = Gov::demo();
    let council1 = g.key("council-1").classical_public().key_id();
    let mut root = g.json("keys/root.json");
    root["version"] = 2.into();
    root["revoked"] = serde_json::json!([{ "keyid": council1, "reason": "retired", "time": "2026-11-01T00:00:00Z" }]);
    g.write_json("keys/root.json", &root);
    g.write_json("keys/roots/2.json", &root);
    g.sign("keys/root.json", &["root-1", "root-2"]);
    g.commit("retire council-1's key");
    let r = assert_rejected(&g, &[], "threshold-not-met", AKASH);
    assert!(has(&r, "revoked-key", &format!("{AKASH}.sig")));
    // The honest repair: a member with an unrevoked key signs.
    for t in [
        "AKASH", "IONET", "RENDER", "FLUX", "AETHIR", "VASTAI", "SALAD",
    ] {
        g.sign(&format!("treaties/AURORA-{t}-001.json"), &["council-3"]);
    }
    g.sign("policies/default.json", &["council-3"]);
    g.commit("council-3 signs");
    assert_approved(&g);
    // The revoked key cannot sign any more.
    g.treaty()
        .args(["sign", AKASH, "--key", "demo-keys/council-1.key"])
        .assert()
        .code(1);
}

#[test]
fn group_changed_without_a_root_update_is_rejected() {
    let g = Gov::demo();
    let mut grp = g.json("keys/groups/akash.json");
    let mallory = treaty::crypto::SigningKey::generate("akash-9").unwrap();
    grp["members"][1]["ed25519"] = b64(&mallory.classical_public().bytes()).into();
    grp["members"][1]["ml_dsa_65"] = b64(&mallory.mldsa_public().unwrap().bytes()).into();
    // Recompute the id so the file is self-consistent: only the root's pin stands in the way.
    let members: Vec<treaty::governance::model::MemberEntry> =
        serde_json::from_value(grp["members"].clone()).unwrap();
    grp["group_id"] = treaty::governance::model::group_id("akash", 1, &members)
        .unwrap()
        .into();
    g.write_json("keys/groups/akash.json", &grp);
    g.commit("swap a provider key");
    let r = assert_rejected(&g, &[], "group-id-mismatch", "keys/groups/akash.json");
    assert_eq!(file(&r, AKASH)["approved"], false);
    assert_eq!(file(&r, IONET)["approved"], true);
}

#[test]
fn group_id_not_matching_its_members_is_rejected() {
    let g = Gov::demo();
    let mut grp = g.json("keys/groups/council.json");
    grp["threshold"] = 1.into();
    g.write_json("keys/groups/council.json", &grp);
    g.commit("lower the council threshold");
    assert_rejected(&g, &[], "group-id-mismatch", "keys/groups/council.json");
}

#[test]
fn bit_flip_in_a_group_key_is_rejected() {
    let g = Gov::demo();
    let mut grp = g.json("keys/groups/council.json");
    let mut raw = unb64(grp["members"][0]["ed25519"].as_str().unwrap()).unwrap();
    raw[5] ^= 0x01;
    grp["members"][0]["ed25519"] = b64(&raw).into();
    g.write_json("keys/groups/council.json", &grp);
    g.commit("flip");
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 1);
    assert!(
        has(&r, "group-id-mismatch", "keys/groups/council.json")
            || has(&r, "group-invalid", "keys/groups/council.json"),
        "{:#?}",
        codes(&r)
    );
}

#[test]
fn same_key_in_two_required_groups_is_a_configuration_error() {
    let g = Gov::demo();
    // Put council-1 into the akash group as well, with a proper root update.
    let council = g.json("keys/groups/council.json");
    let mut akash = g.json("keys/groups/akash.json");
    let mut m = council["members"][0].clone();
    m["id"] = "akash-3".into();
    akash["members"].as_array_mut().unwrap().push(m);
    let members: Vec<treaty::governance::model::MemberEntry> =
        serde_json::from_value(akash["members"].clone()).unwrap();
    let id = treaty::governance::model::group_id("akash", 1, &members).unwrap();
    akash["group_id"] = id.clone().into();
    g.write_json("keys/groups/akash.json", &akash);
    let mut root = g.json("keys/root.json");
    root["version"] = 2.into();
    root["groups"]["akash"] = id.into();
    g.write_json("keys/root.json", &root);
    g.write_json("keys/roots/2.json", &root);
    g.sign("keys/root.json", &["root-1", "root-2"]);
    g.commit("council-1 also in akash");
    let r = assert_rejected(&g, &[], "delegation-conflict", "keys/root.json");
    assert_eq!(file(&r, AKASH)["approved"], false);
}

#[test]
fn uncovered_file_under_a_governed_folder_is_rejected() {
    let g = Gov::demo();
    g.write("treaties/notes.json", "{}\n");
    g.commit("an ungoverned file");
    assert_rejected(&g, &[], "uncovered-file", "treaties/notes.json");
}

#[test]
fn unsupported_file_kind_is_rejected() {
    let g = Gov::demo();
    g.write("keys/README.md", "hello\n");
    g.commit("a readme in keys");
    assert_rejected(&g, &[], "unsupported-kind", "keys/README.md");
}

#[test]
fn bit_flip_in_a_signature_is_rejected() {
    let g = Gov::demo();
    let mut e = g.envelope_of(AKASH);
    let akash_ids: Vec<String> = {
        let k = g.key("akash-1");
        vec![
            k.classical_public().key_id(),
            k.mldsa_public().unwrap().key_id(),
        ]
    };
    for s in e
        .signatures
        .iter_mut()
        .filter(|s| akash_ids.contains(&s.keyid))
        .take(1)
    {
        s.sig[10] ^= 0x80;
    }
    g.put_envelope(AKASH, &e);
    g.commit("flip a signature bit");
    assert_rejected(&g, &[], "threshold-not-met", AKASH);
}

#[test]
fn bit_flip_in_the_approved_digest_is_rejected() {
    let g = Gov::demo();
    let mut e = g.envelope_of(AKASH);
    let text = String::from_utf8(e.payload.clone()).unwrap();
    let i = text.find("\"sha256\":\"").unwrap() + 10;
    let mut bytes = e.payload.clone();
    bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
    e.payload = bytes;
    g.put_envelope(AKASH, &e);
    g.commit("flip a digest");
    let r = assert_rejected(&g, &[], "digest-mismatch", AKASH);
    assert!(
        has(&r, "threshold-not-met", AKASH),
        "signatures over the old payload must not count"
    );
}

#[test]
fn truncated_oversized_and_malformed_envelopes_are_rejected() {
    let sig = format!("{AKASH}.sig");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", {
            let g = Gov::demo();
            let b = g.read(&sig);
            b[..b.len() / 2].to_vec()
        }),
        ("oversized", {
            let mut v = b"{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"\",\"signatures\":[],\"x\":\"".to_vec();
            v.extend(std::iter::repeat_n(b'a', 1024 * 1024));
            v.extend(b"\"}");
            v
        }),
        ("not-json", b"\x00\x01garbage".to_vec()),
        (
            "wrong-payload-type",
            br#"{"payloadType":"text/plain","payload":"","signatures":[]}"#.to_vec(),
        ),
        (
            "payload-not-a-statement",
            br#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}"#
                .to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let g = Gov::demo();
        g.write(&sig, &bytes);
        g.commit(name);
        let (code, r) = g.verify(&[]);
        assert_eq!(code, 1, "{name}");
        assert!(
            has(&r, "envelope-malformed", &sig) || has(&r, "statement-malformed", &sig),
            "{name}: {:#?}",
            codes(&r)
        );
    }
}

#[test]
fn signature_for_a_file_that_does_not_exist_is_rejected() {
    let g = Gov::demo();
    g.git(&["rm", "-q", AKASH]);
    g.commit("delete a treaty, keep its approval");
    assert_rejected(&g, &[], "orphan-signature", &format!("{AKASH}.sig"));
}

#[test]
fn missing_approval_is_rejected() {
    let g = Gov::demo();
    g.git(&["rm", "-q", &format!("{AKASH}.sig")]);
    g.commit("drop approval");
    assert_rejected(&g, &[], "signature-missing", AKASH);
}

#[test]
fn symlink_under_a_governed_folder_is_rejected() {
    let g = Gov::demo();
    std::os::unix::fs::symlink("/etc/passwd", g.path("treaties/AURORA-AKASH-002.json")).unwrap();
    g.commit("symlink");
    assert_rejected(&g, &[], "symlink", "treaties/AURORA-AKASH-002.json");
}

#[test]
fn non_utf8_file_name_is_rejected() {
    use std::os::unix::ffi::OsStrExt;
    let g = Gov::demo();
    let name = std::ffi::OsStr::from_bytes(b"treaties/AURORA-\xff.json");
    std::fs::write(g.dir.join(name), b"{}").unwrap();
    g.commit("bad name");
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 1);
    assert!(
        codes(&r).iter().any(|(c, _)| c == "path-invalid"),
        "{:#?}",
        codes(&r)
    );
}

#[test]
fn gate_config_loosened_without_approval_is_rejected() {
    let g = Gov::demo();
    let cfg = String::from_utf8(g.read("gates/gates.toml"))
        .unwrap()
        .replace("temp-stub = \"on\"", "temp-stub = \"off\"");
    g.write("gates/gates.toml", cfg);
    g.commit("switch off the stub guard");
    assert_rejected(&g, &[], "digest-mismatch", "gates/gates.toml");
}

#[test]
fn schema_loosened_without_approval_is_rejected() {
    let g = Gov::demo();
    let mut s = g.json("schemas/treaty.schema.json");
    s["properties"]["min_reputation"]["minimum"] = (-1).into();
    g.write_json("schemas/treaty.schema.json", &s);
    g.commit("loosen the treaty schema");
    assert_rejected(&g, &[], "digest-mismatch", "schemas/treaty.schema.json");
}

#[test]
fn loosened_gate_config_approved_by_the_root_group_passes() {
    let g = Gov::demo();
    let cfg = String::from_utf8(g.read("gates/gates.toml"))
        .unwrap()
        .replace("version = 1", "version = 2")
        .replace("no-op = \"on\"", "no-op = \"warn\"");
    g.write("gates/gates.toml", cfg);
    g.sign("gates/gates.toml", &["root-1", "root-3"]);
    g.commit("no-op to warn, approved");
    assert_approved(&g);
}

#[test]
fn unknown_spec_major_version_is_refused() {
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["spec_version"] = "2.0".into();
    t["version"] = 2.into();
    g.write_json(AKASH, &t);
    g.commit("from the future");
    assert_rejected(&g, &[], "spec-version-unsupported", AKASH);
}

#[test]
fn schema_violation_names_pointer_and_line() {
    let g = Gov::demo();
    let mut t = g.json(AKASH);
    t["min_reputation"] = 7.into();
    t["version"] = 2.into();
    g.write_json(AKASH, &t);
    g.commit("reputation out of range");
    let r = assert_rejected(&g, &[], "schema-invalid", AKASH);
    let f = file(&r, AKASH)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "schema-invalid")
        .unwrap()
        .clone();
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("/min_reputation"),
        "{f}"
    );
    assert!(f["line"].as_u64().unwrap() > 1);
}

#[test]
fn submodule_under_a_governed_folder_is_rejected() {
    let g = Gov::demo();
    let head = g.git(&["rev-parse", "HEAD"]).trim().to_owned();
    g.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{head},treaties/vendored"),
    ]);
    g.git(&["commit", "-q", "-m", "a submodule in treaties"]);
    assert_rejected(&g, &[], "not-a-file", "treaties/vendored");
}

#[test]
fn oversized_governed_file_is_rejected_without_being_read() {
    let g = Gov::demo();
    let mut big = g.read(AKASH);
    big.resize(16 * 1024 * 1024 + 1, b' ');
    g.write("treaties/AURORA-AKASH-002.json", &big);
    g.commit("a 16 MiB + 1 treaty");
    assert_rejected(&g, &[], "file-too-large", "treaties/AURORA-AKASH-002.json");
}
