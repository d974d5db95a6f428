//! Duplicate JSON keys and strict parsing (issue 12, classes 6 and 7; docs/security.md §
//! Duplicate keys and strict parsing). A signed file that means one thing to one reader and
//! another to the next is refused by validate, sign and verify alike; each refusal sits beside
//! its honest twin, which passes.

use crate::common::*;
use predicates::prelude::*;
use treaty::statement::Statement;

/// AKASH at version 2, once with `status` written twice (revoked, then active) and once
/// honestly (active). serde_json alone would read both as active.
fn treaty_v2(g: &Gov, duplicate: bool) -> Vec<u8> {
    let text = String::from_utf8(g.read(AKASH)).unwrap();
    let text = text.replace("\"version\": 1,", "\"version\": 2,");
    let status = if duplicate {
        "\"status\": \"revoked\",\n  \"status\": \"active\","
    } else {
        "\"status\": \"active\","
    };
    assert!(
        text.contains("\"version\": 2,\n  \"status\": \"active\","),
        "the demo treaty changed shape"
    );
    text.replace("\"status\": \"active\",", status).into_bytes()
}

/// Writes `bytes` as AKASH and an approval of exactly those bytes by enough members of both
/// required groups, made with the library (not `treaty sign`, which refuses duplicates): the
/// attack is a file that honest-looking signatures cover.
fn sign_directly(g: &Gov, bytes: &[u8]) {
    g.write(AKASH, bytes);
    let stmt = Statement::new(AKASH, bytes, 2, g.refs(&["akash", "council"]), None);
    g.put_envelope(
        AKASH,
        &g.envelope(&stmt, &["council-1", "council-2", "akash-1"]),
    );
}

#[test]
fn signed_treaty_with_a_duplicate_status_key_is_unapproved_naming_the_file() {
    let g = Gov::demo();
    let bytes = treaty_v2(&g, true);
    sign_directly(&g, &bytes);
    g.commit("status twice");
    let r = assert_rejected(&g, &[], "duplicate-key", AKASH);
    let f = file(&r, AKASH);
    assert_eq!(f["approved"], false);
    let finding = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "duplicate-key")
        .unwrap();
    assert!(
        finding["message"].as_str().unwrap().contains("\"status\""),
        "{finding}"
    );
    // The second `status` is on the line after the first.
    let line = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .position(|l| l.contains("\"status\": \"active\""))
        .unwrap()
        + 1;
    assert_eq!(finding["line"], line);
}

#[test]
fn signed_treaty_with_one_status_key_is_approved() {
    let g = Gov::demo();
    sign_directly(&g, &treaty_v2(&g, false));
    g.commit("status once");
    assert_approved(&g);
}

#[test]
fn sign_refuses_a_treaty_with_a_duplicate_key() {
    let g = Gov::demo();
    g.write(AKASH, treaty_v2(&g, true));
    let before = g.read(&format!("{AKASH}.sig"));
    g.treaty()
        .args(["sign", AKASH, "--key", "demo-keys/council-1.key"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(AKASH)
                .and(predicate::str::contains("duplicate key \"status\"")),
        );
    assert_eq!(
        g.read(&format!("{AKASH}.sig")),
        before,
        "nothing was signed"
    );
}

#[test]
fn sign_signs_the_honest_twin() {
    let g = Gov::demo();
    g.write(AKASH, treaty_v2(&g, false));
    g.sign(AKASH, &["council-1", "council-2", "akash-1"]);
    g.commit("status once, signed with the CLI");
    assert_approved(&g);
}

#[test]
fn validate_reports_a_duplicate_key_with_file_key_and_line() {
    let g = Gov::demo();
    g.write(AKASH, treaty_v2(&g, true));
    let out = g
        .treaty()
        .args(["validate", AKASH, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let f = &v["findings"][0];
    assert_eq!(f["code"], "duplicate-key");
    assert_eq!(f["path"], AKASH);
    assert!(f["message"].as_str().unwrap().contains("\"status\""), "{f}");
    assert!(f["line"].as_u64().is_some(), "{f}");
    // The whole-tree run finds it too.
    g.treaty()
        .arg("validate")
        .assert()
        .code(1)
        .stdout(predicate::str::contains(AKASH).and(predicate::str::contains("duplicate-key")));
}

#[test]
fn validate_passes_the_honest_twin() {
    let g = Gov::demo();
    g.write(AKASH, treaty_v2(&g, false));
    g.treaty().args(["validate", AKASH]).assert().success();
}

/// The honest envelope's text with a second `payload` member whose payload approves other
/// bytes. serde_json would verify the second; another reader the first.
fn envelope_with_two_payloads(g: &Gov) -> String {
    let sig = format!("{AKASH}.sig");
    let text = String::from_utf8(g.read(&sig)).unwrap();
    let other = Statement::new(AKASH, b"{}", 1, g.refs(&["akash", "council"]), None);
    let extra = format!(
        "\"payload\": \"{}\",\n  \"payload\":",
        treaty::crypto::b64(&other.to_bytes())
    );
    let out = text.replacen("\"payload\":", &extra, 1);
    assert_ne!(out, text);
    out
}

#[test]
fn envelope_with_a_duplicate_payload_key_is_refused() {
    let g = Gov::demo();
    g.write(&format!("{AKASH}.sig"), envelope_with_two_payloads(&g));
    g.commit("two payloads");
    let r = assert_rejected(&g, &[], "duplicate-key", &format!("{AKASH}.sig"));
    assert_eq!(file(&r, AKASH)["approved"], false);
    // validate checks envelopes' format too.
    g.treaty()
        .arg("validate")
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!("{AKASH}.sig")));
}

#[test]
fn envelope_with_its_members_in_another_order_and_an_extra_member_is_approved() {
    let g = Gov::demo();
    let sig = format!("{AKASH}.sig");
    let v = g.json(&sig);
    let reordered = serde_json::json!({
        "signatures": v["signatures"],
        "x-note": "ignored, as DSSE allows",
        "payload": v["payload"],
        "payloadType": v["payloadType"],
    });
    g.write_json(&sig, &reordered);
    g.commit("same envelope, other layout");
    assert_approved(&g);
    g.treaty().arg("validate").assert().success();
}

/// A statement payload with `version` written twice, signed by enough members: the bytes are
/// authentic, the meaning is not unique.
#[test]
fn signed_statement_with_a_duplicate_key_is_refused() {
    let g = Gov::demo();
    let bytes = treaty_v2(&g, false);
    g.write(AKASH, &bytes);
    let honest = Statement::new(AKASH, &bytes, 2, g.refs(&["akash", "council"]), None);
    let text = String::from_utf8(honest.to_bytes()).unwrap();
    let twice = text.replace("\"version\":2", "\"version\":1,\"version\":2");
    assert_ne!(twice, text);
    let mut env = g.envelope(&honest, &["council-1", "council-2", "akash-1"]);
    // Re-sign over the altered payload, so only its duplicate key is wrong.
    env.payload = twice.into_bytes();
    let pae = env.signed_bytes();
    env.signatures.clear();
    for id in ["council-1", "council-2", "akash-1"] {
        for m in g.key(id).sign(&pae).unwrap() {
            env.signatures.push(treaty::dsse::Signature {
                keyid: m.key.key_id(),
                sig: m.sig,
            });
        }
    }
    g.put_envelope(AKASH, &env);
    g.commit("statement with version twice");
    assert_rejected(&g, &[], "duplicate-key", &format!("{AKASH}.sig"));
}

#[test]
fn pinned_root_with_a_duplicate_key_is_refused_and_its_honest_twin_is_followed() {
    let g = Gov::demo();
    let root = String::from_utf8(g.read("keys/roots/1.json")).unwrap();
    g.write("../pin.json", &root);
    assert_eq!(g.verify(&["--trust", "../pin.json"]).0, 0);
    let twice = root.replacen("\"version\": 1,", "\"version\": 1,\n  \"version\": 1,", 1);
    assert_ne!(twice, root);
    g.write("../pin-twice.json", twice);
    g.treaty()
        .args(["verify", "--trust", "../pin-twice.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("duplicate key \"version\""));
}

#[test]
fn governed_json_with_a_byte_order_mark_is_refused_and_without_it_approved() {
    let g = Gov::demo();
    let honest = treaty_v2(&g, false);
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&honest);
    sign_directly(&g, &bom);
    g.commit("treaty with a BOM");
    assert_rejected(&g, &[], "parse-error", AKASH);
    sign_directly(&g, &honest);
    g.commit("treaty without");
    assert_approved(&g);
}
