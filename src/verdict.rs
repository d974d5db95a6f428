//! The verdicts judgement produces — per file ([`FileVerdict`]) and per state ([`Report`]) — as
//! plain data: what `treaty verify --format json` prints, what the verdict cache stores, what
//! the gate and the agent read. Owned here, below both [`crate::verify`] (which computes them)
//! and its cache (which keeps them), so neither imports the other's internals.

use serde::{Deserialize, Serialize};

use crate::approval::GroupTally;
use crate::diag::Finding;

/// The verdict on one governed file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileVerdict {
    pub path: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub approved: bool,
    /// The delegation that decided which groups must approve it (or `root chain`, `root pin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governed_by: Option<String>,
    pub groups: Vec<GroupTally>,
    pub findings: Vec<Finding>,
    /// When the file's approval expires (from its statement), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires: Option<String>,
}

/// A summary of the trust the verdicts rest on.
#[derive(Debug, Clone, Serialize)]
pub struct TrustSummary {
    pub root_version: u64,
    pub root_expires: String,
    /// `pinned` (walked from `--trust`) or `repository` (the repository's own first root).
    pub anchor: &'static str,
    pub anchor_version: u64,
    pub chain_ok: bool,
}

/// Everything `treaty verify` and `treaty status` report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub approved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub judged_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustSummary>,
    pub files: Vec<FileVerdict>,
    /// Findings about the state as a whole (trust, orphans, invalid names).
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub files: usize,
    pub approved: usize,
    pub unapproved: usize,
    pub errors: usize,
    pub warnings: usize,
}
