//! `treaty`: a GitOps toolchain and CI gatekeeper for threshold-signed governance state.
//!
//! The library owns every layer; the binaries in `src/bin/` only parse arguments, call into
//! [`cli`], and map the outcome to an exit code (0 approved, 1 a finding about content, 2 the
//! tool could not judge).
//!
//! Layers, in the order data flows (see `docs/model.md`):
//! - [`durable`]: the one atomic, durable file writer (no litter on a full disk).
//! - [`text`]: untrusted text made safe to show a person (control characters escaped).
//! - [`json`]: strict JSON (no duplicate keys, no byte order mark, bounded depth), the only JSON
//!   reader for anything from a repository, a user's file or a peer.
//! - [`path`] and [`glob`]: validated repository paths and the delegation glob dialect.
//! - [`crypto`]: hybrid Ed25519 + ML-DSA-65 keys, key ids, encrypted private keys.
//! - [`dsse`] and [`statement`]: the signed envelope and the in-toto approval statement.
//! - [`governance`]: the file kinds (root, group, treaty, policy, gates) and their schemas.
//! - [`source`]: reading a governance tree from git objects at a revision, or from the work tree.
//!   Its [`source::history`] walks every ancestor for the highest version per path (rollback by
//!   any route).
//! - [`trust`]: root chain, pinned groups, delegations; [`trustmap`]: the same as a map for
//!   people (`treaty trust show`: table, DOT, Mermaid).
//! - [`verify`]: per-file verdicts, threshold counting, rollback checks.
//! - [`cache`]: per-file verdicts reused across runs, keyed by every input of a verdict.
//! - [`facts`]: per-blob digests, versions and treaty lifecycles, remembered by blob id.
//! - [`sign`], [`scaffold`], [`lifecycle`]: producing approvals, new repositories, trust changes.
//! - [`vectors`], [`mod@bench`]: the spec's test vectors and the verification benchmark.
//!
//! Deliberate deviations from the specs we build on are listed in `docs/model.md`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod audit;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod crypto;
pub mod diag;
pub mod dsse;
pub mod durable;
pub mod emit;
pub mod facts;
pub mod gate;
pub mod glob;
pub mod governance;
pub mod json;
pub mod lifecycle;
pub mod merkle;
pub mod note;
pub mod path;
pub mod release;
pub mod review;
pub mod scaffold;
pub mod sign;
pub mod snapshot;
pub mod source;
pub mod statement;
pub mod text;
pub mod time;
pub mod trust;
pub mod trustmap;
pub mod tsp;
pub mod vectors;
pub mod verify;

/// The public conformance vectors' location, shared with the integration tests.
#[cfg(test)]
#[path = "../tests/support/vectors.rs"]
mod testvectors;

/// The major version of the file formats this build reads and writes. Every governance file
/// and every signed statement carries a `spec_version` of the form `MAJOR.MINOR`; a file whose
/// major differs is refused, so a verifier years from now knows what it reads.
pub const SPEC_VERSION: &str = "1.0";
/// The major part of [`SPEC_VERSION`].
pub const SPEC_MAJOR: u64 = 1;
