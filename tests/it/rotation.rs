//! Root rotation: version N+1 needs the threshold of version N's root group and of its own.

use crate::common::*;
use treaty::crypto::SigningKey;

/// Writes three new root keys into demo-keys/ and returns root v2 with them as the root group.
fn rotate(g: &Gov) -> serde_json::Value {
    let mut members = vec![];
    for i in 1..=3 {
        let id = format!("newroot-{i}");
        let k = SigningKey::generate(&id).unwrap();
        g.write(
            &format!("demo-keys/{id}.key"),
            serde_json::to_vec(&k.to_file(None).unwrap()).unwrap(),
        );
        members.push(treaty::scaffold::member_entry(&k));
    }
    let body = treaty::scaffold::group_body("root", 2, members).unwrap();
    let mut root = g.json("keys/root.json");
    root["version"] = 2.into();
    root["root_group"] = serde_json::to_value(&body).unwrap();
    g.write_json("keys/root.json", &root);
    g.write_json("keys/roots/2.json", &root);
    root
}

/// Files delegated to the root group name its group id, so a new root group re-approves them.
fn resign_root_delegated(g: &Gov, ids: &[&str]) {
    let mut files = vec!["gates/gates.toml".to_owned()];
    for e in std::fs::read_dir(g.path("schemas")).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        if n.ends_with(".schema.json") {
            files.push(format!("schemas/{n}"));
        }
    }
    for f in files {
        g.sign(&f, ids);
    }
}

#[test]
fn rotation_signed_by_old_and_new_root_groups_is_approved() {
    let g = Gov::demo();
    std::fs::copy(g.path("keys/roots/1.json"), g.path("../pinned-root.json")).unwrap();
    rotate(&g);
    g.sign(
        "keys/root.json",
        &["root-1", "root-2", "newroot-1", "newroot-2"],
    );
    resign_root_delegated(&g, &["newroot-1", "newroot-3"]);
    g.commit("rotate root");
    assert_approved(&g);
    // A verifier that pinned version 1 out of band follows the chain to version 2.
    let (code, r) = g.verify(&["--trust", "../pinned-root.json"]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
    assert_eq!(r["trust"]["anchor"], "pinned");
    assert_eq!(r["trust"]["root_version"], 2);
}

#[test]
fn rotation_signed_only_by_the_new_root_group_is_rejected() {
    let g = Gov::demo();
    rotate(&g);
    g.sign("keys/root.json", &["newroot-1", "newroot-2"]);
    resign_root_delegated(&g, &["newroot-1", "newroot-2"]);
    g.commit("self-appointed root");
    assert_rejected(&g, &[], "root-signature-threshold", "keys/roots/2.json");
}

#[test]
fn rotation_signed_only_by_the_old_root_group_is_rejected() {
    let g = Gov::demo();
    rotate(&g);
    g.sign("keys/root.json", &["root-1", "root-2"]);
    g.commit("old root imposes new keys");
    assert_rejected(&g, &[], "root-signature-threshold", "keys/roots/2.json");
}

#[test]
fn rotation_skipping_a_version_is_rejected() {
    let g = Gov::demo();
    let mut root = rotate(&g);
    root["version"] = 3.into();
    std::fs::remove_file(g.path("keys/roots/2.json")).unwrap();
    g.write_json("keys/root.json", &root);
    g.write_json("keys/roots/3.json", &root);
    g.commit("skip v2");
    assert_rejected(&g, &[], "root-chain-broken", "keys/roots");
}

#[test]
fn root_json_differing_from_its_newest_kept_version_is_rejected() {
    let g = Gov::demo();
    let mut root = g.json("keys/root.json");
    root["expires"] = "2099-01-01T00:00:00Z".into();
    g.write_json("keys/root.json", &root);
    g.commit("extend expiry in place");
    assert_rejected(&g, &[], "root-chain-broken", "keys/root.json");
}

#[test]
fn a_pinned_root_from_another_federation_is_rejected() {
    let g = Gov::demo();
    // A version 1 that is not this repository's version 1 (another federation's genesis).
    let mut foreign = g.json("keys/root.json");
    let other = treaty::crypto::SigningKey::generate("other-1").unwrap();
    foreign["root_group"] = serde_json::to_value(
        treaty::scaffold::group_body("root", 1, vec![treaty::scaffold::member_entry(&other)])
            .unwrap(),
    )
    .unwrap();
    std::fs::write(
        g.path("../foreign-root.json"),
        serde_json::to_vec(&foreign).unwrap(),
    )
    .unwrap();
    assert_rejected(
        &g,
        &["--trust", "../foreign-root.json"],
        "root-not-pinned",
        "keys/roots/1.json",
    );
    // A pin newer than anything the repository has: a frozen or rolled-back mirror.
    let mut future = g.json("keys/root.json");
    future["version"] = 5.into();
    std::fs::write(
        g.path("../future-root.json"),
        serde_json::to_vec(&future).unwrap(),
    )
    .unwrap();
    assert_rejected(
        &g,
        &["--trust", "../future-root.json"],
        "root-not-pinned",
        "keys/root.json",
    );
    std::fs::copy(g.path("keys/root.json"), g.path("../own-root.json")).unwrap();
    let (code, _) = g.verify(&["--trust", "../own-root.json"]);
    assert_eq!(code, 0);
}

#[test]
fn root_version_lower_than_the_parent_is_a_rollback() {
    let g = Gov::demo();
    let v1 = (g.read("keys/root.json"), g.read("keys/root.json.sig"));
    let mut root = g.json("keys/root.json");
    root["version"] = 2.into();
    root["expires"] = "2035-01-01T00:00:00Z".into();
    g.write_json("keys/root.json", &root);
    g.write_json("keys/roots/2.json", &root);
    g.sign("keys/root.json", &["root-1", "root-3"]);
    g.commit("root v2");
    assert_approved(&g);
    g.write("keys/root.json", &v1.0);
    g.write("keys/root.json.sig", &v1.1);
    g.commit("root back to v1");
    let (code, r) = g.verify(&[]);
    assert_eq!(code, 1);
    assert!(
        has(&r, "version-rollback", "keys/root.json") || has(&r, "root-chain-broken", "keys/roots"),
        "{:#?}",
        codes(&r)
    );
}

/// `--trust blake3:…` pins the root group (members and threshold) instead of a root file:
/// trust starts at the first root version with that group, which its own threshold must sign.
#[test]
fn a_pinned_root_group_id_anchors_the_chain_where_that_group_first_appears() {
    let g = Gov::demo();
    let v1_group = g.json("keys/root.json")["root_group"]["group_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, r) = g.verify(&["--trust", &v1_group]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
    assert_eq!(r["trust"]["anchor"], "pinned-group");
    assert_eq!(r["trust"]["anchor_version"], 1);
    // Rotated to a new root group: pinning the new group starts at version 2; the old group
    // still walks the whole chain.
    let v2 = rotate(&g);
    g.sign(
        "keys/root.json",
        &["root-1", "root-2", "newroot-1", "newroot-2"],
    );
    resign_root_delegated(&g, &["newroot-1", "newroot-3"]);
    g.commit("rotate root");
    let v2_group = v2["root_group"]["group_id"].as_str().unwrap().to_owned();
    let (code, r) = g.verify(&["--trust", &v2_group]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
    assert_eq!(r["trust"]["anchor_version"], 2);
    let (code, r) = g.verify(&["--trust", &v1_group]);
    assert_eq!(code, 0, "{:#?}", codes(&r));
    assert_eq!(r["trust"]["root_version"], 2);
    // A group this repository never had: nothing is approved.
    let foreign = format!("blake3:{}", "ab".repeat(32));
    assert_rejected(&g, &["--trust", &foreign], "root-not-pinned", "keys/roots");
    // Not a group id at all: the tool cannot judge (exit 2).
    let out = g
        .treaty()
        .args(["verify", "--trust", "blake3:xyz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 lowercase hex"));
}

/// The group id pins who must sign, not the document: the first root version with that group
/// must carry that group's threshold, or nothing is trusted.
#[test]
fn a_root_with_the_pinned_group_but_without_its_signatures_is_rejected() {
    let g = Gov::demo();
    let id = g.json("keys/root.json")["root_group"]["group_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Keep one root signature only (the demo's root threshold is 2).
    let sig = g.json("keys/roots/1.json.sig");
    let mut one = sig.clone();
    one["signatures"] = serde_json::Value::Array(vec![sig["signatures"][0].clone()]);
    g.write_json("keys/roots/1.json.sig", &one);
    g.commit("drop a root signature");
    assert_rejected(
        &g,
        &["--trust", &id],
        "root-signature-threshold",
        "keys/roots/1.json",
    );
}

/// After the root *group* rotates, a pin at the rotated version verifies (its envelope names
/// both groups; the pin, not the envelope, is what trust rests on — docs/spec.md § 5.1), and so
/// does every later pull request (the gate pins the base's root).
#[test]
fn after_a_root_group_rotation_a_pin_at_the_new_version_and_the_next_gate_pass() {
    let g = Gov::demo();
    let k = treaty::crypto::SigningKey::generate("root-4").unwrap();
    g.write_json(
        "../root-4.pub.json",
        &serde_json::to_value(treaty::scaffold::member_entry(&k)).unwrap(),
    );
    g.treaty()
        .args([
            "group",
            "add-member",
            "root",
            "--member",
            "../root-4.pub.json",
        ])
        .assert()
        .success();
    g.sign_root(&["root-1", "root-2"]);
    // Files delegated to the root group name its id: they are signed again under the new one.
    g.sign("gates/gates.toml", &["root-1", "root-2"]);
    let schemas: Vec<String> = std::fs::read_dir(g.path("schemas"))
        .unwrap()
        .flatten()
        .map(|e| format!("schemas/{}", e.file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".json"))
        .collect();
    for s in &schemas {
        g.sign(s, &["root-1", "root-2"]);
    }
    g.commit("root group rotation");
    assert_approved(&g);
    let (code, r) = g.verify(&["--trust", "keys/roots/2.json"]);
    assert_eq!(code, 0, "{r}");
    g.git(&["switch", "-q", "-c", "pr"]);
    g.sign("treaties/AURORA-AKASH-001.json", &["council-3"]);
    g.commit("council-3 co-signs");
    let (code, v) = gate_json(&g, &[]);
    assert_eq!(code, 0, "{v}");
}
