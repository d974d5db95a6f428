//! The fuzz targets' committed corpora (`fuzz/corpus/<target>/`), crash inputs included, replayed
//! through the same property the target asserts (`fuzz/props/<target>.rs`, included by both), so
//! every input a fuzzing run kept stays a regression test in CI.

use std::path::Path;

mod time_prop {
    include!("../../fuzz/props/time.rs");
}
mod tree_prop {
    include!("../../fuzz/props/tree.rs");
}
mod strict_json_prop {
    include!("../../fuzz/props/strict_json.rs");
}
mod gates_config_prop {
    include!("../../fuzz/props/gates_config.rs");
}
mod noop_prop {
    include!("../../fuzz/props/noop.rs");
}
mod verify_mutated_prop {
    include!("../../fuzz/props/verify_mutated.rs");
}
mod merkle_proof_prop {
    include!("../../fuzz/props/merkle_proof.rs");
}
mod release_manifest_prop {
    include!("../../fuzz/props/release_manifest.rs");
}
mod openpgp_prop {
    include!("../../fuzz/props/openpgp.rs");
}
mod law_message_prop {
    include!("../../fuzz/props/law_message.rs");
}

/// Runs `check` on every file of `fuzz/corpus/<target>`; the corpus must exist and be non-empty
/// (a replay test that finds nothing to replay would pass without checking anything).
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the committed corpus is missing)", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let data = std::fs::read(&f).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{}: the property failed on this corpus input", f.display());
        }
        n += 1;
    }
    assert!(n > 0, "{}: empty corpus", dir.display());
    n
}

#[test]
fn the_merkle_proof_corpus_replays() {
    replay("merkle_proof", merkle_proof_prop::check);
}

#[test]
fn the_time_corpus_replays() {
    replay("time", time_prop::check);
}

#[test]
fn the_tree_corpus_replays() {
    replay("tree", tree_prop::check);
}

#[test]
fn the_verify_mutated_corpus_replays() {
    replay("verify_mutated", verify_mutated_prop::check);
}

#[test]
fn the_strict_json_corpus_replays() {
    replay("strict_json", strict_json_prop::check);
}

#[test]
fn the_noop_corpus_replays() {
    replay("noop", noop_prop::check);
}

#[test]
fn the_gates_config_corpus_replays() {
    replay("gates_config", gates_config_prop::check);
}

/// The release corpus reaches both asserted branches: its seed archive passes against its
/// manifest and its seed proof passes (a replay of inputs that all fail early asserts nothing).
#[test]
fn the_release_manifest_corpus_replays_and_reaches_its_assertions() {
    replay("release_manifest", release_manifest_prop::check);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/release_manifest");
    let split = |name: &str| {
        let d = std::fs::read(dir.join(name)).unwrap();
        let i = d.iter().position(|&b| b == 0).unwrap();
        (d[..i].to_vec(), d[i + 1..].to_vec())
    };
    let (m, a) = split("seed-archive");
    assert!(treaty::release::check_archive_entries(&m, &a).is_ok());
    let (m, p) = split("seed-proof");
    assert!(treaty::release::check_proof(&m, &p).is_ok());
}

/// The OpenPGP corpus holds a real v4 public key (made by gpg) that the reader accepts, so the
/// fingerprint assertion runs.
#[test]
fn the_openpgp_corpus_replays_and_reaches_its_assertions() {
    replay("openpgp", openpgp_prop::check);
    let key = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/openpgp/seed-public-key.asc"),
    )
    .unwrap();
    assert!(treaty::release::pgp::check_public_key(&key).is_ok());
}

/// The runtime-message corpus holds an order, an ACK and an attestation that parse, so the
/// bounds and round-trip assertions run.
#[test]
fn the_law_message_corpus_replays_and_reaches_its_assertions() {
    replay("law_message", law_message_prop::check);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/law_message");
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    assert!(treaty::law::message::Order::parse(&read("seed-order")).is_ok());
    assert!(treaty::law::message::Ack::parse(&read("seed-ack")).is_ok());
    assert!(treaty::law::message::Attestation::parse(&read("seed-attestation")).is_ok());
}
