//! `treaty`: a GitOps toolchain and CI gatekeeper for threshold-signed governance state.
//!
//! The library owns every layer below the command line; the binaries (`src/bin/treaty/`, whose
//! `cli/` `treaty-agent` shares) parse arguments, call into the library, print, and map the
//! outcome to an exit code (0 approved, 1 a finding about content, 2 the tool could not judge).
//!
//! Layers, lowest first (ARCHITECTURE.md; `.ci/layers.toml` is the checked-in rank and
//! `.ci/layers.py` fails CI on an upward import or a cycle):
//! - base: [`text`] (untrusted text made safe to show), [`json`] (the strict JSON reader),
//!   [`time`], [`path`] and [`glob`], [`merkle`], [`diag`] (findings and their codes),
//!   [`durable`] (the one atomic, durable file writer), [`spec`] (the format version).
//! - crypto and envelopes: [`crypto`] (hybrid Ed25519 + ML-DSA-65 keys), [`dsse`] and
//!   [`statement`], [`note`] (signed notes, checkpoints), [`tsp`] (RFC 3161).
//! - model: [`governance`] — file kinds, typed root/group/delegation/revocation, the
//!   [`governance::model::Role`] enum, the well-known paths, schemas.
//! - source: [`source`] — every git read (trees, history, the work tree); [`facts`] — per-blob
//!   digests and versions remembered by blob id.
//! - judgement: [`approval`] (thresholds over one envelope), [`trust`] (root chain, pins,
//!   delegations), [`verify`] (per-file verdicts over a tree) with its [`cache`] and the
//!   [`verdict`] types, [`snapshot`] (the state snapshot: built from and compared with a tree),
//!   [`trustmap`] and [`review`] (what people ask of a verdict).
//! - write side: [`sign`], [`lifecycle`], [`scaffold`], [`emit`].
//! - subsystems: [`audit`], [`release`], [`gate`], [`agent`], [`law`] (the runtime decision
//!   point: signed orders and ACKs, replay and quota state). The benchmarks and the spec's
//!   vector generator are tools beside the product (`tools/bench`, `tools/vectors`).
//! - command line: not here — with the binaries (`src/bin/treaty/cli/`).
//!
//! Deliberate deviations from the specs we build on are listed in `docs/model.md`.
#![forbid(unsafe_code)]
// The judgement modules are read by whoever changes a rule: each function fits a screen
// (clippy.toml's too-many-lines-threshold). Tests inside them are exempt (tables are long).

pub mod agent;
#[warn(clippy::too_many_lines)]
pub mod approval;
pub mod audit;
#[warn(clippy::too_many_lines)]
pub mod cache;
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
pub mod law;
pub mod lifecycle;
pub mod merkle;
pub mod note;
pub mod path;
pub mod release;
#[warn(clippy::too_many_lines)]
pub mod review;
pub mod scaffold;
pub mod sign;
#[warn(clippy::too_many_lines)]
pub mod snapshot;
pub mod source;
pub mod spec;
pub mod statement;
pub mod text;
pub mod time;
pub mod tpm;
#[warn(clippy::too_many_lines)]
pub mod trust;
#[warn(clippy::too_many_lines)]
pub mod trustmap;
pub mod tsp;
#[warn(clippy::too_many_lines)]
pub mod verdict;
#[warn(clippy::too_many_lines)]
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
