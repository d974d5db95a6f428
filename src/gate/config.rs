//! Gate configuration, read from the **base** revision's `gates/*.toml` (never from the pull
//! request's head: a pull request must not be able to switch off the gates that judge it).

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::source::Tree;

/// How a gate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    On,
    Off,
    Warn,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AllowEntry {
    pub path: String,
    pub issue: String,
    /// `YYYY-MM-DD`; from that day on the entry no longer allows anything.
    pub expires: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Exemption {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TempStub {
    pub markers: Vec<String>,
    pub protect: Vec<String>,
    pub exclude: Vec<String>,
    pub allowlist: Vec<AllowEntry>,
    pub exemptions: Vec<Exemption>,
}

impl Default for TempStub {
    fn default() -> Self {
        Self {
            markers: vec!["TEMP-STUB".into()],
            protect: vec!["**".into()],
            exclude: vec!["tests/**".into(), "docs/**".into(), "**/fixtures/**".into()],
            allowlist: vec![],
            exemptions: vec![],
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Promotion {
    pub lanes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Expiry {
    pub warn_within_days: i64,
}

impl Default for Expiry {
    fn default() -> Self {
        Self {
            warn_within_days: 30,
        }
    }
}

/// What a no-op finding does: fail the gate, or be reported as a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Fail,
    Warn,
}

/// The no-op guard's verdict per path class (docs/gates.md § No-op changes). A re-formatted or
/// re-signed governed file is exactly the meaningless change the guard exists for; a comment or
/// whitespace fix elsewhere is an ordinary, legitimate commit (about 2.3 % of commits in code
/// repositories), so by default it only warns.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoOp {
    /// Files under the governed folders (`keys/`, `treaties/`, `policies/`, `gates/`,
    /// `schemas/`, `state/`).
    pub governed: Verdict,
    /// Every other file.
    pub other: Verdict,
}

impl Default for NoOp {
    fn default() -> Self {
        Self {
            governed: Verdict::Fail,
            other: Verdict::Warn,
        }
    }
}

/// The merged configuration of every `gates/*.toml` at the base revision.
#[derive(Debug, Clone, Default)]
pub struct GateConfig {
    pub modes: BTreeMap<String, Mode>,
    pub temp_stub: TempStub,
    pub promotion: Promotion,
    pub expiry: Expiry,
    pub no_op: NoOp,
    /// The files it was read from.
    pub sources: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(default)]
    gates: BTreeMap<String, Mode>,
    temp_stub: Option<TempStub>,
    promotion: Option<Promotion>,
    expiry: Option<Expiry>,
    no_op: Option<NoOp>,
}

/// A gate. Findings are filed under one by this enum, never by a string, so a mistyped id is a
/// compile error instead of findings that silently go nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GateId {
    Schema,
    Approval,
    Version,
    TempStub,
    NoOp,
    Expiry,
    Audit,
}

impl GateId {
    /// Every gate, in report order.
    pub const ALL: [GateId; 7] = [
        GateId::Schema,
        GateId::Approval,
        GateId::Version,
        GateId::TempStub,
        GateId::NoOp,
        GateId::Expiry,
        GateId::Audit,
    ];

    /// The id in `gates.toml` and in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            GateId::Schema => "schema",
            GateId::Approval => "approval",
            GateId::Version => "version",
            GateId::TempStub => "temp-stub",
            GateId::NoOp => "no-op",
            GateId::Expiry => "expiry",
            GateId::Audit => "audit",
        }
    }
}

impl serde::Serialize for GateId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Every gate id, in report order.
pub const GATES: [&str; 7] = [
    GateId::Schema.as_str(),
    GateId::Approval.as_str(),
    GateId::Version.as_str(),
    GateId::TempStub.as_str(),
    GateId::NoOp.as_str(),
    GateId::Expiry.as_str(),
    GateId::Audit.as_str(),
];

/// Why the gates' configuration (read from the base) cannot be used: the gate cannot judge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ConfigError {
    /// The configuration file.
    pub path: String,
    pub reason: String,
}

impl GateConfig {
    /// Reads the configuration from `base`. Absent configuration means every gate on with the
    /// defaults `treaty init` writes; an unreadable one is an error (the gate cannot judge).
    pub fn from_tree(base: &Tree) -> Result<GateConfig, ConfigError> {
        let mut c = GateConfig::default();
        for g in GATES {
            c.modes.insert(g.to_owned(), Mode::On);
        }
        for p in base
            .entries
            .keys()
            .filter(|p| p.top() == "gates" && p.as_str().ends_with(".toml"))
        {
            let bad = |reason: String| ConfigError {
                path: p.to_string(),
                reason,
            };
            let bytes = base.read(p).map_err(|e| bad(format!("{e:?}")))?;
            let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8".into()))?;
            let raw: Raw = toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
            for (k, m) in raw.gates {
                if !GATES.contains(&k.as_str()) {
                    return Err(bad(format!("unknown gate {k:?}")));
                }
                c.modes.insert(k, m);
            }
            if let Some(t) = raw.temp_stub {
                c.temp_stub = t;
            }
            if let Some(pr) = raw.promotion {
                c.promotion = pr;
            }
            if let Some(e) = raw.expiry {
                c.expiry = e;
            }
            if let Some(n) = raw.no_op {
                c.no_op = n;
            }
            c.sources.push(p.to_string());
        }
        Ok(c)
    }

    pub fn mode(&self, gate: &str) -> Mode {
        self.modes.get(gate).copied().unwrap_or(Mode::On)
    }
}
