//! Gate report formats for CI systems: GitHub workflow commands with a job summary, and SARIF
//! 2.1.0 (OASIS) for code scanning. Pure functions from a [`GateReport`] to text, so the bytes
//! are deterministic and testable.

use super::{GateReport, Status};
use crate::diag::{Code, Finding};

/// Escapes a workflow-command message (GitHub "workflow commands": `%`, CR, LF).
fn esc_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow-command property value (also `:` and `,`).
fn esc_prop(s: &str) -> String {
    esc_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn message(f: &Finding) -> String {
    match &f.help {
        Some(h) => format!("{} (help: {h})", f.message),
        None => f.message.clone(),
    }
}

/// `::error file=…,line=…,title=…::message` lines, one per finding.
pub fn github_annotations(r: &GateReport) -> String {
    let mut out = String::new();
    for g in &r.gates {
        for f in &g.findings {
            let level = if f.is_error() { "error" } else { "warning" };
            let mut props = Vec::new();
            if let Some(p) = &f.path {
                props.push(format!("file={}", esc_prop(p)));
            }
            if let Some(l) = f.line {
                props.push(format!("line={l}"));
            }
            if let Some(c) = f.column {
                props.push(format!("col={c}"));
            }
            props.push(format!(
                "title={}",
                esc_prop(&format!("{} [{}]", g.id, f.code))
            ));
            out.push_str(&format!(
                "::{level} {}::{}\n",
                props.join(","),
                esc_data(&message(f))
            ));
        }
    }
    out
}

/// The Markdown job summary.
pub fn markdown_summary(r: &GateReport) -> String {
    let mut md = String::new();
    let verdict = if r.passed { "passed" } else { "failed" };
    md.push_str(&format!("## treaty gate: {verdict}\n\n"));
    md.push_str(&format!(
        "`{}` → `{}` ({} files changed). Trust, configuration and schemas from the base.\n\n",
        &r.base_commit[..r.base_commit.len().min(12)],
        &r.head_commit[..r.head_commit.len().min(12)],
        r.changed.len()
    ));
    md.push_str("| gate | status | findings |\n|---|---|---|\n");
    for g in &r.gates {
        let st = match g.status {
            Status::Pass => "✅ pass",
            Status::Fail => "❌ fail",
            Status::Pending => "⏳ pending",
            Status::Warn => "⚠️ warn",
            Status::Off => "off",
        };
        md.push_str(&format!("| `{}` | {st} | {} |\n", g.id, g.findings.len()));
    }
    for g in r.gates.iter().filter(|g| !g.findings.is_empty()) {
        md.push_str(&format!("\n### {}\n\n", g.id));
        for f in &g.findings {
            let loc = match (&f.path, f.line) {
                (Some(p), Some(l)) => format!("`{p}:{l}` "),
                (Some(p), None) => format!("`{p}` "),
                _ => String::new(),
            };
            md.push_str(&format!(
                "- **{}** {loc}{}\n",
                f.code,
                message(f).replace('\n', " ")
            ));
        }
    }
    if !r.exemptions.is_empty() {
        md.push_str("\nExempt from the TEMP-STUB guard: ");
        let ex: Vec<String> = r
            .exemptions
            .iter()
            .map(|(p, why)| format!("`{p}` ({why})"))
            .collect();
        md.push_str(&ex.join(", "));
        md.push('\n');
    }
    md
}

/// SARIF 2.1.0.
pub fn sarif(r: &GateReport) -> serde_json::Value {
    let mut rules: Vec<Code> = r
        .gates
        .iter()
        .flat_map(|g| g.findings.iter().map(|f| f.code))
        .collect();
    rules.sort();
    rules.dedup();
    let results: Vec<serde_json::Value> = r
        .gates
        .iter()
        .flat_map(|g| {
            g.findings.iter().map(move |f| {
                let mut res = serde_json::json!({
                    "ruleId": f.code.as_str(),
                    "level": if f.is_error() { "error" } else { "warning" },
                    "message": { "text": message(f) },
                    "properties": { "gate": g.id },
                });
                if let Some(p) = &f.path {
                    let mut loc = serde_json::json!({ "artifactLocation": { "uri": p } });
                    if let Some(l) = f.line {
                        loc["region"] = serde_json::json!({ "startLine": l });
                    }
                    res["locations"] = serde_json::json!([{ "physicalLocation": loc }]);
                }
                res
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "treaty",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|c| serde_json::json!({
                    "id": c.as_str(),
                    "shortDescription": { "text": c.description() },
                })).collect::<Vec<_>>(),
            }},
            "results": results,
            "properties": { "base": r.base_commit, "head": r.head_commit, "passed": r.passed },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(esc_data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(esc_prop("x:y,z"), "x%3Ay%2Cz");
    }
}
