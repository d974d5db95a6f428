//! `treaty emit`: ordered, reproducible commands between two approved states, valid against
//! schemas/command.schema.json; unapproved ends refused.

use crate::common::*;
use treaty::facts::FactCache;

fn emit(g: &Gov, args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let out = g.treaty().arg("emit").args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let cmds = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap(),
        cmds,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_schema(cmds: &[serde_json::Value]) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schemas/command.schema.json")).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    for c in cmds {
        let errors: Vec<String> = v.iter_errors(c).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{c:#}: {errors:?}");
    }
}

fn bump(g: &Gov, path: &str, f: impl FnOnce(&mut serde_json::Value), signers: &[&str]) {
    let mut t = g.json(path);
    t["version"] = (t["version"].as_u64().unwrap() + 1).into();
    f(&mut t);
    g.write_json(path, &t);
    g.sign(path, signers);
}

/// Two approved changes: AKASH's quota raised to 128 (an update), IONET suspended.
fn raise_akash_suspend_ionet(g: &Gov) {
    bump(
        g,
        AKASH,
        |t| t["quotas"]["concurrent_jobs"] = 128.into(),
        &["council-1", "council-2", "akash-1"],
    );
    bump(
        g,
        IONET,
        |t| t["status"] = "suspended".into(),
        &["council-1", "council-2", "ionet-1"],
    );
}

#[test]
fn from_an_empty_state_every_approved_object_is_emitted_in_order_and_reproducibly() {
    let g = Gov::demo();
    let (code, cmds, err) = emit(&g, &["--repository", "gov"]);
    assert_eq!(code, 0, "{err}");
    check_schema(&cmds);
    let ops: Vec<&str> = cmds.iter().map(|c| c["op"].as_str().unwrap()).collect();
    let mut sorted = ops.clone();
    sorted.sort_by_key(|o| treaty::emit::OPS.iter().position(|x| x == o));
    assert_eq!(ops, sorted, "ops in the documented order");
    assert!(ops.iter().filter(|o| **o == "treaty.activate").count() >= 7);
    assert!(ops.contains(&"group.update") && ops.contains(&"policy.update"));
    let head = g.git(&["rev-parse", "HEAD"]);
    assert!(cmds
        .iter()
        .all(|c| c["source"]["commit"] == head.trim() && c["source"]["repository"] == "gov"));
    let akash = cmds.iter().find(|c| c["subject"]["path"] == AKASH).unwrap();
    assert_eq!(akash["treaty"]["treaty_id"], "AURORA-AKASH-001");
    // Same input, same bytes; idempotency keys are unique.
    let a = g
        .treaty()
        .args(["emit", "--repository", "gov"])
        .output()
        .unwrap()
        .stdout;
    let b = g
        .treaty()
        .args(["emit", "--repository", "gov"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(a, b);
    let mut keys: Vec<&str> = cmds
        .iter()
        .map(|c| c["idempotency_key"].as_str().unwrap())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), cmds.len());
}

#[test]
fn changes_between_two_approved_states_become_ordered_commands() {
    let g = Gov::demo();
    let a = g.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let akash2 = g.key("akash-2").classical_public().key_id();
    g.treaty()
        .args(["key", "revoke", &akash2, "--reason", "retired"])
        .assert()
        .success();
    g.sign_root(&["root-1", "root-2"]);
    raise_akash_suspend_ionet(&g);
    g.commit("revoke akash-2, raise AKASH quotas, suspend IONET");
    assert_approved(&g);
    let (code, cmds, err) = emit(&g, &["--from", &a]);
    assert_eq!(code, 0, "{err}");
    check_schema(&cmds);
    let ops: Vec<(&str, &str)> = cmds
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap(),
                c["subject"]["path"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("key.revoke", "keys/root.json"),
            ("treaty.update", AKASH),
            ("treaty.suspend", IONET)
        ],
        "{cmds:#?}"
    );
    assert_eq!(cmds[0]["keyid"], akash2);
    assert_eq!(cmds[1]["changes"]["quotas"]["concurrent_jobs"], 128);
    assert_eq!(cmds[1]["changes"]["version"], 2);
    assert!(
        cmds[1]["changes"].get("regions").is_none(),
        "only changed fields"
    );
    // Nothing changed: nothing to do.
    let (_, none, _) = emit(&g, &["--from", "HEAD", "--to", "HEAD"]);
    assert!(none.is_empty());
    // Resumed, then revoked.
    bump(
        &g,
        IONET,
        |t| t["status"] = "active".into(),
        &["council-1", "council-2", "ionet-1"],
    );
    g.commit("resume IONET");
    let (_, c, _) = emit(&g, &["--from", "HEAD~1"]);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["op"], "treaty.activate");
    bump(
        &g,
        IONET,
        |t| t["status"] = "revoked".into(),
        &["council-1", "council-2", "ionet-1"],
    );
    g.commit("revoke IONET");
    let (_, c, _) = emit(&g, &["--from", "HEAD~1"]);
    assert_eq!(c[0]["op"], "treaty.revoke");
}

#[test]
fn a_treaty_past_its_expiry_is_expired_and_unapproved_ends_are_refused() {
    let g = Gov::demo();
    bump(
        &g,
        AKASH,
        |t| t["expires"] = "2030-01-01T00:00:00Z".into(),
        &["council-1", "council-2", "akash-1"],
    );
    g.commit("AKASH ends in 2030");
    let (code, c, err) = emit(
        &g,
        &[
            "--from",
            "HEAD",
            "--to",
            "HEAD",
            "--at",
            "2031-01-01T00:00:00Z",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(
        (c[0]["op"].as_str(), c[0]["subject"]["path"].as_str()),
        (Some("treaty.expire"), Some(AKASH))
    );
    // An end that is not approved.
    g.write(IONET, b"{}");
    g.commit("break IONET");
    let (code, c, err) = emit(&g, &["--from", "HEAD~1"]);
    assert_eq!(code, 1);
    assert!(c.is_empty() && err.contains("not approved"), "{err}");
    let (code, _, _) = emit(&g, &["--from", "HEAD", "--to", "HEAD~1"]);
    assert_eq!(code, 1);
    g.treaty()
        .args(["emit", "--to", "no-such-rev"])
        .assert()
        .code(2);
}

#[test]
fn snapshots_and_heartbeats_are_signed_by_the_snapshot_role_and_match_the_tree() {
    let g = Gov::demo();
    // The demo already carries both, approved.
    assert!(g.path("state/snapshot.json").is_file() && g.path("state/heartbeat.json").is_file());
    assert_approved(&g);
    // A member of another group cannot sign them.
    g.treaty()
        .args(["snapshot", "--key", "demo-keys/council-1.key"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("automation"));
    assert_eq!(g.git(&["status", "--porcelain"]), "", "nothing written");
    // A change, then a new snapshot and heartbeat by CI's key.
    bump(
        &g,
        AKASH,
        |t| t["quotas"]["concurrent_jobs"] = 96.into(),
        &["council-1", "council-2", "akash-1"],
    );
    g.commit("raise AKASH");
    let tree = treaty::source::tree_from_dir(&g.dir).unwrap();
    let old: treaty::snapshot::Snapshot =
        serde_json::from_slice(&g.read("state/snapshot.json")).unwrap();
    let m = treaty::snapshot::mismatches(&tree, &old, 1, &mut FactCache::in_memory());
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0].contains(AKASH));
    g.treaty()
        .args(["snapshot", "--key", "demo-keys/ci-1.key"])
        .assert()
        .success();
    g.treaty()
        .args(["heartbeat", "--key", "demo-keys/ci-1.key", "--ttl", "1h"])
        .assert()
        .success();
    g.commit("snapshot 2");
    assert_approved(&g);
    let snap: treaty::snapshot::Snapshot =
        serde_json::from_slice(&g.read("state/snapshot.json")).unwrap();
    assert_eq!(snap.version, 2);
    let tree = treaty::source::tree_from_dir(&g.dir).unwrap();
    assert!(treaty::snapshot::mismatches(&tree, &snap, 1, &mut FactCache::in_memory()).is_empty());
    let hb: treaty::snapshot::Heartbeat =
        serde_json::from_slice(&g.read("state/heartbeat.json")).unwrap();
    assert_eq!((hb.version, hb.snapshot_version), (2, 2));
    // Versions never go down: an older snapshot, even validly signed, is a rollback.
    g.git(&[
        "checkout",
        "HEAD~2",
        "--",
        "state/snapshot.json",
        "state/snapshot.json.sig",
    ]);
    g.commit("roll the snapshot back");
    assert_rejected(&g, &[], "version-rollback", "state/snapshot.json");
    // A file the snapshot does not list, or a missing one, is a mismatch.
    let tree = treaty::source::tree_from_dir(&g.dir).unwrap();
    let mut extra = snap.clone();
    extra.files.remove(IONET);
    extra
        .files
        .insert("treaties/GONE.json".into(), snap.files[IONET].clone());
    let m = treaty::snapshot::mismatches(&tree, &extra, 1, &mut FactCache::in_memory());
    assert!(
        m.iter()
            .any(|x| x.contains("GONE") && x.contains("missing")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|x| x.contains(IONET) && x.contains("not in the snapshot")),
        "{m:?}"
    );
}

#[test]
fn facts_remembered_by_blob_id_give_the_same_snapshot_verdict_and_the_same_commands() {
    let g = Gov::demo();
    let a = g.git(&["rev-parse", "HEAD"]).trim().to_owned();
    raise_akash_suspend_ionet(&g);
    g.commit("raise AKASH, suspend IONET");
    let repo = treaty::source::Repo::discover(&g.dir).unwrap();
    let old = repo.tree_at(repo.resolve(&a).unwrap()).unwrap();
    let new = repo.tree_at(repo.resolve("HEAD").unwrap()).unwrap();
    let src = treaty::emit::Source {
        repository: "gov".into(),
        commit: "c".into(),
        root_version: 1,
        snapshot_version: None,
    };
    let now = treaty::time::now();
    // Far enough ahead that every treaty, unchanged ones included, has expired: those
    // transitions are decided from remembered facts alone.
    let later = treaty::time::parse("2200-01-01T00:00:00Z").unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let run =
        |at, facts: &mut FactCache| treaty::emit::emit(Some((&old, now)), &new, &src, at, facts);
    for at in [now, later] {
        let cold = run(at, &mut FactCache::in_memory());
        let mut warm = FactCache::load(cache_dir.path());
        assert_eq!(run(at, &mut warm), cold);
        warm.save();
        let mut loaded = FactCache::load(cache_dir.path());
        assert_eq!(run(at, &mut loaded), cold, "served from the saved facts");
        assert!(!cold.is_empty());
    }
    assert!(cache_dir.path().join("treaty/facts-v1.json").is_file());
    let expired = run(later, &mut FactCache::load(cache_dir.path()));
    assert!(
        expired
            .iter()
            .filter(|c| c["op"] == "treaty.expire")
            .count()
            >= 5,
        "{expired:#?}"
    );
    // The old snapshot, checked against the new tree with warm facts, still names both changes.
    let snap: treaty::snapshot::Snapshot =
        serde_json::from_slice(&old.file("state/snapshot.json").unwrap()).unwrap();
    let mut facts = FactCache::load(cache_dir.path());
    assert!(treaty::snapshot::mismatches(&old, &snap, 1, &mut facts).is_empty());
    let m = treaty::snapshot::mismatches(&new, &snap, 1, &mut facts);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m.iter().any(|x| x.contains(AKASH)) && m.iter().any(|x| x.contains(IONET)));
}
