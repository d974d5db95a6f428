//! Gate report formats for CI systems: GitHub workflow commands with a job summary, and SARIF
//! 2.1.0 (OASIS) for code scanning. Pure functions from a [`GateReport`] to text, so the bytes
//! are deterministic and testable.

use super::{GateReport, Status};
use crate::diag::{Code, Finding};

/// Escapes a workflow-command message (GitHub "workflow commands": `%`, CR, LF). Every other
/// control character is escaped first ([`crate::text`]): the runner's log viewer renders ANSI
/// colour, and a person may read this on a terminal too. That also turns a line break in the
/// data into a visible `\n`, so the percent-encoding of CR and LF below only backs it up.
fn esc_data(s: &str) -> String {
    crate::text::escape(s)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow-command property value (also `:` and `,`).
fn esc_prop(s: &str) -> String {
    esc_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Markdown text that renders as exactly `s`: control characters escaped ([`crate::text`]),
/// then every ASCII punctuation character Markdown could read as syntax backslash-escaped
/// (CommonMark §2.4), so a file name or message cannot open a heading, a link, an image, HTML
/// or a table cell in the job summary.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in crate::text::escape(s).chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '{'
                | '}'
                | '['
                | ']'
                | '<'
                | '>'
                | '('
                | ')'
                | '#'
                | '+'
                | '!'
                | '|'
                | '~'
                | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Markdown code span holding exactly `s` (control characters escaped): fenced with one
/// backtick more than the longest run inside it (CommonMark §6.1), padded when `s` starts or
/// ends with a backtick, and with `|` escaped so it cannot end a table cell (GFM).
fn md_code(s: &str) -> String {
    let s = crate::text::escape(s).replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
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
                (Some(p), Some(l)) => format!("{} ", md_code(&format!("{p}:{l}"))),
                (Some(p), None) => format!("{} ", md_code(p)),
                _ => String::new(),
            };
            md.push_str(&format!("- **{}** {loc}{}\n", f.code, md_text(&message(f))));
        }
    }
    if !r.exemptions.is_empty() {
        md.push_str("\nExempt from the TEMP-STUB guard: ");
        let ex: Vec<String> = r
            .exemptions
            .iter()
            .map(|(p, why)| format!("{} ({})", md_code(p), md_text(why)))
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
                    let mut loc =
                        serde_json::json!({ "artifactLocation": { "uri": uri_reference(p) } });
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

/// A repository path as a relative URI reference (RFC 3986 §4.2), as SARIF's
/// `artifactLocation.uri` requires: every byte but the unreserved characters and `/` is
/// percent-encoded, so a space, `#`, `?`, `%` or a `:` in the first segment (which would read as
/// a scheme) cannot change what the reference names.
pub fn uri_reference(path: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sarif_uris_are_percent_encoded_references() {
        for (path, uri) in [
            ("src/lib.rs", "src/lib.rs"),
            ("a b/c#d?e%f.rs", "a%20b/c%23d%3Fe%25f.rs"),
            ("c:/x", "c%3A/x"),
            ("dir/ä.rs", "dir/%C3%A4.rs"),
            ("x\ny", "x%0Ay"),
        ] {
            assert_eq!(uri_reference(path), uri, "{path:?}");
        }
    }

    #[test]
    fn workflow_command_values_are_escaped() {
        assert_eq!(esc_data("a%b"), "a%25b");
        assert_eq!(esc_prop("x:y,z"), "x%3Ay%2Cz");
        assert_eq!(esc_data("a\x1b[2J\r\nb"), r"a\u{1b}[2J\r\nb");
        assert_eq!(esc_prop("t/\n::error::x,y"), r"t/\n%3A%3Aerror%3A%3Ax%2Cy");
    }

    const HOSTILE: &str = "x`\n## treaty gate: passed\n![i](https://evil.example/p.png)|<b>\x1b";

    fn hostile_report() -> GateReport {
        GateReport {
            tool: "treaty".into(),
            base: "b".into(),
            head: "h".into(),
            base_commit: "0".repeat(40),
            head_commit: "1".repeat(40),
            target: None,
            promotion_lane: false,
            passed: false,
            pending: false,
            gates: vec![super::super::GateResult {
                id: "schema",
                mode: super::super::Mode::On,
                status: Status::Fail,
                findings: vec![
                    Finding::error(Code::UncoveredFile, Some(HOSTILE), HOSTILE).help(HOSTILE)
                ],
            }],
            changed: vec![],
            exemptions: vec![(HOSTILE.into(), HOSTILE.into())],
            config_sources: vec![],
        }
    }

    #[test]
    fn annotations_carry_hostile_fields_on_one_line_without_control_characters() {
        let a = github_annotations(&hostile_report());
        assert_eq!(a.lines().count(), 1, "{a}");
        assert!(a.starts_with("::error file="), "{a}");
        assert!(!a.trim_end().chars().any(crate::text::is_unsafe), "{a:?}");
        // The only `::` are ours, around the properties: none came from the data.
        assert_eq!(a.matches("::").count(), 2, "{a}");
    }

    #[test]
    fn markdown_summary_shows_hostile_fields_as_text() {
        let md = markdown_summary(&hostile_report());
        assert!(!md.contains('\x1b') && !md.contains('\r'), "{md}");
        // Our two headings and no other; the hostile one stays inside its line.
        let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(headings, ["## treaty gate: failed", "### schema"], "{md}");
        let item = md
            .lines()
            .find(|l| l.starts_with("- **"))
            .unwrap_or_default();
        // The path in a code span fenced past its backtick; the message as escaped text, so
        // neither the image nor the HTML renders.
        assert!(
            item.starts_with(r"- **uncovered-file** ``x`\n## treaty gate: passed\n![i]"),
            "{item}"
        );
        assert!(
            item.contains(r"\!\[i\]\(https://evil.example/p.png\)\|\<b\>"),
            "{item}"
        );
        assert!(md.contains("Exempt from the TEMP-STUB guard: ``x`"), "{md}");
    }

    #[test]
    fn code_spans_fence_past_backticks() {
        assert_eq!(md_code("a"), "`a`");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`a"), "`` `a ``");
        assert_eq!(md_code("a|b"), r"`a\|b`");
    }
}
