//! Findings: what verification found, with a stable kebab-case code, where, why and how to fix.
//!
//! Findings are data, not `Err`s: every check runs, every finding is collected, and the caller
//! decides the exit code from the worst severity. Codes are a public contract (docs/model.md §
//! Finding codes); never rename one.

use serde::{Deserialize, Serialize};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: reported, never fails anything.
    Warning,
    /// The file (or the whole state) is not approved.
    Error,
}

macro_rules! codes {
    ($($variant:ident = $code:literal : $desc:literal,)*) => {
        /// Every finding code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }
            pub fn description(self) -> &'static str {
                match self { $(Code::$variant => $desc,)* }
            }
        }
    };
}

codes! {
    RootMissing = "root-missing": "keys/root.json is absent at the revision judged",
    RootInvalid = "root-invalid": "a root file does not parse or breaks a rule of the root format",
    RootChainBroken = "root-chain-broken": "keys/roots/ is not a contiguous chain from version 1, or keys/root.json differs from its newest entry",
    RootSignatureThreshold = "root-signature-threshold": "a root version lacks the threshold of its previous root group or of its own",
    RootExpired = "root-expired": "the newest root has expired (freeze attack or overdue renewal)",
    RootNotPinned = "root-not-pinned": "the pinned root (--trust) is not part of this repository's root chain",
    GroupMissing = "group-missing": "a group the root pins has no keys/groups/NAME.json",
    GroupInvalid = "group-invalid": "a group file is malformed or breaks a group rule (threshold, duplicates, keys)",
    GroupIdMismatch = "group-id-mismatch": "a group's members and threshold do not hash to the group_id the root pins",
    GroupNotPinned = "group-not-pinned": "a group file exists that the root does not pin",
    DelegationInvalid = "delegation-invalid": "a delegation names an unknown group or has a bad pattern",
    DelegationConflict = "delegation-conflict": "one key or member appears in two groups the same delegation requires",
    RoleInvalid = "role-invalid": "a role names a group the root does not pin",
    PathInvalid = "path-invalid": "a path under a governed folder is not a valid repository path",
    Symlink = "symlink": "a symlink under a governed folder",
    NotAFile = "not-a-file": "a submodule or other non-file entry under a governed folder",
    FileTooLarge = "file-too-large": "a governed file is larger than 16 MiB",
    UncoveredFile = "uncovered-file": "a file under a governed folder that no delegation covers",
    UnsupportedKind = "unsupported-kind": "a file under a governed folder of a kind treaty cannot version",
    ParseError = "parse-error": "a governed file is not valid JSON or TOML",
    DuplicateKey = "duplicate-key": "a governed file, envelope or approval statement repeats a key in one JSON object (readers disagree on which copy counts)",
    SchemaInvalid = "schema-invalid": "a governed file does not satisfy its JSON Schema",
    TreatyFailoverSelf = "treaty-failover-self": "a treaty lists itself among its failover treaties",
    SchemaMissing = "schema-missing": "the schema that judges this kind is absent or broken at this revision",
    SpecVersionUnsupported = "spec-version-unsupported": "a spec_version whose major version this build does not read",
    SignatureMissing = "signature-missing": "a governed file has no .sig beside it",
    OrphanSignature = "orphan-signature": "a .sig file whose signed file does not exist",
    EnvelopeMalformed = "envelope-malformed": "a .sig is not a well-formed DSSE envelope within the limits",
    StatementMalformed = "statement-malformed": "the envelope payload is not a valid approval statement",
    SubjectMismatch = "subject-mismatch": "the statement approves another path (mix-and-match)",
    DigestMismatch = "digest-mismatch": "the file's bytes are not the bytes that were approved",
    StatementVersionMismatch = "statement-version-mismatch": "the statement approves another version of the file",
    StatementGroupsMismatch = "statement-groups-mismatch": "the statement does not name exactly the groups the delegation requires",
    ApprovalExpired = "approval-expired": "the approval's own expiry has passed",
    ThresholdNotMet = "threshold-not-met": "a required group has fewer valid distinct member signatures than its threshold",
    UnknownKey = "unknown-key": "signature entries that verify against no key of a required group (ignored)",
    RevokedKey = "revoked-key": "signatures by revoked keys (they count for nothing)",
    RetiredKeyTimestamped = "retired-key-timestamped": "a retired key's signature counts because an RFC 3161 timestamp proves the approval predates the retirement",
    TimestampInvalid = "timestamp-invalid": "an approval's RFC 3161 timestamp does not verify, or covers an earlier envelope (it is ignored)",
    HybridIncomplete = "hybrid-incomplete": "a hybrid member with only one of its two signatures valid (does not count)",
    InvalidSignature = "invalid-signature": "an entry names a member key but does not verify (forged, altered or stale)",
    VersionRollback = "version-rollback": "a file's version is lower than a version some ancestor commit had at the same path",
    VersionEquivocation = "version-equivocation": "the same version as the highest an ancestor commit had at the same path, but bytes no ancestor committed at that version",
    TreeMalformed = "tree-malformed": "a git tree object git fsck refuses (unsorted, duplicate entries, bad mode or name): a checkout would not hold what is judged",
    UnexpectedFile = "unexpected-file": "an entry under a governed folder that is neither a judged document nor the approval envelope or timestamp of one",
    HistoryIncomplete = "history-incomplete": "ancestors needed for the rollback check are absent (shallow clone) and the caller accepted judging without them",
    ApprovalPending = "approval-pending": "signatures are still being collected: every other check passes but a threshold is not met yet",
    GovernedFileDeleted = "governed-file-deleted": "a governed file was deleted or renamed away (files are retired by an approved version, never deleted)",
    TempStubMarker = "temp-stub-marker": "a TEMP-STUB marker in a protected path",
    TempStubAllowed = "temp-stub-allowed": "a TEMP-STUB marker allowed by an unexpired allowlist entry (reported, not failed)",
    TempStubAllowlistExpired = "temp-stub-allowlist-expired": "a TEMP-STUB marker whose allowlist entry has expired",
    BinarySkipped = "binary-skipped": "a binary file the TEMP-STUB guard did not scan",
    TempStubUnscanned = "temp-stub-unscanned": "a symlink in a protected path the TEMP-STUB guard cannot follow to a file in the tree (it fails rather than pass unread)",
    NoOpChange = "no-op-change": "the change from base matters to nobody: empty, whitespace, formatting, comments or re-signing only",
    AuditInvalid = "audit-invalid": "the audit log on refs/treaty/audit does not verify (an entry, tile or checkpoint was altered, or no valid checkpoint vouches for it)",
    AuditNotExtension = "audit-not-extension": "the audit log is not an extension of the published checkpoint (history rewritten, truncated or forked)",
    Expired = "expired": "a treaty, root or approval touched by the change has expired",
    ExpiringSoon = "expiring-soon": "a treaty, root or approval touched by the change expires within the configured window",
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown finding code {s:?}")))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Code {
    /// Whether a member's signature can clear this finding (the file then moves toward
    /// approval): missing, stale or too few signatures. Anything else — schema, rollback,
    /// coverage, trust — must be fixed first, so `status --pending` does not offer such a file.
    pub fn fixed_by_signing(self) -> bool {
        matches!(
            self,
            Code::ThresholdNotMet
                | Code::RootSignatureThreshold
                | Code::SignatureMissing
                | Code::DigestMismatch
                | Code::StatementVersionMismatch
                | Code::StatementGroupsMismatch
                | Code::ApprovalPending
                | Code::ApprovalExpired
                | Code::InvalidSignature
                | Code::UnknownKey
                | Code::HybridIncomplete
                | Code::RevokedKey
        )
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    /// The file it is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
    /// How to fix it, for the operator reading this at 3 a.m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Finding {
    pub fn error(code: Code, path: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            code,
            severity: Severity::Error,
            path: path.map(str::to_owned),
            line: None,
            column: None,
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(code: Code, path: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, path, message)
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn at(mut self, line: Option<usize>, column: Option<usize>) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl Finding {
    /// The first line of the finding as a person reads it: severity, code, location, message.
    /// [`Display`](std::fmt::Display) adds the help on a second line.
    pub fn headline(&self) -> Headline<'_> {
        Headline(self)
    }
}

/// [`Finding::headline`].
pub struct Headline<'a>(&'a Finding);

// Paths, messages and help quote file names and contents from the repository, which nobody
// has approved yet (a finding is usually about exactly such a file): each is escaped here, so
// a finding is safe to show wherever it is shown (terminal, log line, workflow annotation).
// Only the layout between them, ours, is written as it is.
impl std::fmt::Display for Headline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::text::Escaped;
        let x = self.0;
        let sev = match x.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}]: ", x.code)?;
        if let Some(p) = &x.path {
            write!(f, "{}", Escaped(p))?;
            if let Some(l) = x.line {
                write!(f, ":{l}")?;
                if let Some(c) = x.column {
                    write!(f, ":{c}")?;
                }
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", Escaped(&x.message))
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.headline())?;
        if let Some(h) = &self.help {
            write!(f, "\n  help: {}", crate::text::Escaped(h))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {c}");
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{c}"
            );
            assert!(!c.description().is_empty());
        }
    }

    #[test]
    fn findings_escape_what_they_quote_and_keep_only_their_own_line_break() {
        let hostile = "\x1b[2J\r\nresult: APPROVED\u{202e}\u{9b}";
        for &code in Code::ALL {
            for f in [
                Finding::error(code, Some(hostile), hostile),
                Finding::warning(code, Some(hostile), hostile)
                    .at(Some(3), Some(7))
                    .help(hostile),
                Finding::error(code, None, hostile).help(hostile),
            ] {
                let shown = f.to_string();
                let lines: Vec<&str> = shown.split('\n').collect();
                assert_eq!(lines.len(), 1 + usize::from(f.help.is_some()), "{shown}");
                assert!(lines[0].starts_with(&format!(
                    "{}[{code}]: ",
                    if f.is_error() { "error" } else { "warning" }
                )));
                assert!(
                    lines.get(1).is_none_or(|h| h.starts_with("  help: ")),
                    "{shown}"
                );
                assert!(
                    !shown.replace('\n', "").chars().any(crate::text::is_unsafe),
                    "{shown:?}"
                );
                assert!(
                    shown.contains(r"\u{1b}[2J\r\nresult: APPROVED\u{202e}\u{9b}"),
                    "{shown}"
                );
                assert_eq!(f.headline().to_string(), lines[0]);
            }
        }
    }

    #[test]
    fn every_code_is_documented() {
        let doc = [
            include_str!("../docs/model.md"),
            include_str!("../docs/gates.md"),
        ]
        .concat();
        for c in Code::ALL {
            assert!(
                doc.contains(&format!("`{}`", c.as_str())),
                "docs/model.md lacks `{c}`"
            );
        }
    }
}
