//! Posting gate results to GitHub: one check run per gate, with annotations, and a commit
//! status per gate as the fallback when check runs cannot be created (a token without
//! `checks: write`, as on pull requests from forks).
//!
//! The verdict never depends on whether posting succeeded: a posting failure is reported and
//! the exit code stays the gate's. Network errors, rate limits (429, and 403 secondary limits,
//! honouring `retry-after`) and 5xx are retried with exponential backoff; 401, 404 and other
//! 4xx are reported at once. Request bodies follow the GitHub REST API ("Create a check run",
//! "Create a commit status").

use serde_json::{json, Value};
use std::time::Duration;

use super::{GateReport, Status};

/// Where and as whom to post.
#[derive(Debug, Clone)]
pub struct Context {
    pub api: String,
    pub owner: String,
    pub repo: String,
    pub token: String,
    /// Base delay for retries (1 s in production; tests shorten it).
    pub backoff: Duration,
    pub attempts: u32,
}

impl Context {
    /// From the standard `GITHUB_*` variables; `None` when there is no token or repository.
    pub fn from_env() -> Option<Context> {
        let token = std::env::var("GITHUB_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())?;
        let full = std::env::var("GITHUB_REPOSITORY").ok()?;
        let (owner, repo) = full.split_once('/')?;
        let api = std::env::var("GITHUB_API_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "https://api.github.com".into());
        let backoff = std::env::var("TREATY_GITHUB_BACKOFF_MS")
            .ok()
            .and_then(|m| m.parse().ok())
            .map_or(Duration::from_secs(1), Duration::from_millis);
        Some(Context {
            api: api.trim_end_matches('/').to_owned(),
            owner: owner.into(),
            repo: repo.into(),
            token,
            backoff,
            attempts: 4,
        })
    }
}

/// What posting did, for the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Posted {
    pub check_runs: usize,
    pub statuses: usize,
    pub errors: Vec<String>,
}

fn conclusion(s: Status) -> &'static str {
    match s {
        Status::Pass => "success",
        Status::Fail => "failure",
        Status::Pending => "action_required",
        Status::Warn | Status::Off => "neutral",
    }
}

fn state(s: Status) -> &'static str {
    match s {
        Status::Pass | Status::Warn | Status::Off => "success",
        Status::Fail => "failure",
        Status::Pending => "pending",
    }
}

/// GitHub accepts at most 50 annotations per request.
const MAX_ANNOTATIONS: usize = 50;

/// The check-run body for one gate.
pub fn check_run_body(
    r: &GateReport,
    gate: &super::GateResult,
    verdict_digest: Option<&str>,
) -> Value {
    let annotations: Vec<Value> = gate
        .findings
        .iter()
        .filter_map(|f| {
            let path = f.path.as_ref()?;
            let line = f.line.unwrap_or(1);
            Some(json!({
                "path": path,
                "start_line": line,
                "end_line": line,
                "annotation_level": if f.is_error() { "failure" } else { "warning" },
                "title": f.code.as_str(),
                "message": match &f.help { Some(h) => format!("{}\n{h}", f.message), None => f.message.clone() },
            }))
        })
        .take(MAX_ANNOTATIONS)
        .collect();
    let mut summary = format!(
        "{} finding(s). Trust, configuration and schemas from base `{}`.",
        gate.findings.len(),
        r.base_commit
    );
    if let Some(d) = verdict_digest {
        summary.push_str(&format!(
            "\n\nSigned verdict sha256: `{d}` (check with `treaty verdict verify`)."
        ));
    }
    if gate.findings.iter().filter(|f| f.path.is_some()).count() > MAX_ANNOTATIONS {
        summary.push_str(&format!("\n\nOnly the first {MAX_ANNOTATIONS} annotations are shown; run `treaty gate` for all."));
    }
    let mut body = json!({
        "name": format!("treaty/{}", gate.id),
        "head_sha": r.head_commit,
        "status": "completed",
        "conclusion": conclusion(gate.status),
        "output": { "title": format!("{}: {:?}", gate.id, gate.status).to_lowercase(), "summary": summary, "annotations": annotations },
    });
    if let Some(d) = verdict_digest {
        body["external_id"] = json!(d);
    }
    body
}

enum Outcome {
    Ok,
    /// Not retryable (with the status code, if any).
    Fatal(Option<u16>, String),
}

async fn send(o: &octocrab::Octocrab, ctx: &Context, path: &str, body: &Value) -> Outcome {
    let url = format!("{}{path}", ctx.api);
    let mut last = String::new();
    for attempt in 0..ctx.attempts {
        if attempt > 0 {
            tokio::time::sleep(ctx.backoff * 2u32.pow(attempt - 1)).await;
        }
        let res = match o._post(url.as_str(), Some(body)).await {
            Ok(r) => r,
            Err(e) => {
                last = format!("POST {path}: {e}");
                continue;
            }
        };
        let code = res.status().as_u16();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let text = o.body_to_string(res).await.unwrap_or_default();
        match code {
            200..=299 => return Outcome::Ok,
            429 => {}
            403 if retry_after.is_some() || text.to_lowercase().contains("rate limit") => {}
            500..=599 => {}
            _ => {
                return Outcome::Fatal(
                    Some(code),
                    format!(
                        "POST {path}: HTTP {code}: {}",
                        text.chars().take(200).collect::<String>()
                    ),
                )
            }
        }
        last = format!("POST {path}: HTTP {code} (retried)");
        if let Some(s) = retry_after {
            tokio::time::sleep(Duration::from_secs(s.min(60))).await;
        }
    }
    Outcome::Fatal(
        None,
        format!("{last}; gave up after {} attempts", ctx.attempts),
    )
}

/// Posts a check run per gate (falling back to commit statuses). Never fails the caller.
pub fn post(r: &GateReport, ctx: &Context, verdict_digest: Option<&str>) -> Posted {
    let mut posted = Posted::default();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            posted
                .errors
                .push(format!("cannot start the HTTP runtime: {e}"));
            return posted;
        }
    };
    rt.block_on(async {
        let client = octocrab::Octocrab::builder()
            .personal_token(ctx.token.clone())
            .base_uri(ctx.api.as_str())
            .and_then(|b| b.build());
        let o = match client {
            Ok(o) => o,
            Err(e) => {
                posted.errors.push(format!("cannot build the GitHub client: {e}"));
                return;
            }
        };
        let mut use_statuses = false;
        for g in &r.gates {
            if !use_statuses {
                let path = format!("/repos/{}/{}/check-runs", ctx.owner, ctx.repo);
                match send(&o, ctx, &path, &check_run_body(r, g, verdict_digest)).await {
                    Outcome::Ok => {
                        posted.check_runs += 1;
                        continue;
                    }
                    Outcome::Fatal(Some(403 | 404), m) => {
                        posted.errors.push(format!("{m}; falling back to commit statuses"));
                        use_statuses = true;
                    }
                    Outcome::Fatal(_, m) => {
                        posted.errors.push(m);
                        continue;
                    }
                }
            }
            let path = format!("/repos/{}/{}/statuses/{}", ctx.owner, ctx.repo, r.head_commit);
            let body = json!({
                "state": state(g.status),
                "context": format!("treaty/{}", g.id),
                "description": format!("{}: {} finding(s)", format!("{:?}", g.status).to_lowercase(), g.findings.len()),
            });
            match send(&o, ctx, &path, &body).await {
                Outcome::Ok => posted.statuses += 1,
                Outcome::Fatal(_, m) => posted.errors.push(m),
            }
        }
    });
    posted
}
