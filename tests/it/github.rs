//! Posting to GitHub, against a local HTTP fake that answers with the REST API's shapes and
//! records what was sent. (The real API cannot be reached from here.)

use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

type Script =
    Arc<dyn Fn(&str, &str, usize) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync>;

struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<(String, String, serde_json::Value)>>>,
}

fn fake(script: Script) -> Fake {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<(String, String, serde_json::Value)>>> = Arc::default();
    let rec = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(stream) = stream else { continue };
            let rec = rec.clone();
            let script = script.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut first = String::new();
                    if reader.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = first.split_whitespace();
                    let (method, path) = (
                        parts.next().unwrap_or("").to_owned(),
                        parts.next().unwrap_or("").to_owned(),
                    );
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    let n = {
                        let mut seen = rec.lock().unwrap();
                        seen.push((
                            method.clone(),
                            path.clone(),
                            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                        ));
                        seen.iter()
                            .filter(|(m, p, _)| m == &method && p == &path)
                            .count()
                    };
                    let (code, headers, resp) = script(&method, &path, n);
                    let mut head = format!("HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", resp.len());
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    if out
                        .write_all(head.as_bytes())
                        .and_then(|_| out.write_all(resp.as_bytes()))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Fake { url, seen }
}

fn check_run_json() -> String {
    serde_json::json!({ "id": 4, "node_id": "CR_x", "head_sha": "0", "status": "completed", "conclusion": "success", "name": "treaty/schema", "url": "u", "html_url": "h" }).to_string()
}

fn run_gate(g: &Gov, url: &str) -> std::process::Output {
    g.treaty()
        .env("GITHUB_TOKEN", "t0k3n")
        .env("GITHUB_REPOSITORY", "aurora/governance")
        .env("GITHUB_API_URL", url)
        .env("TREATY_GITHUB_BACKOFF_MS", "1")
        .args(["gate", "--base", "main"])
        .output()
        .unwrap()
}

fn pr_with_a_stub(g: &Gov) {
    g.git(&["checkout", "-q", "-b", "pr"]);
    g.write("src/s.rs", "fn s() {}\n// TEMP-STUB\n");
    g.commit("stub");
}

#[test]
fn check_runs_are_posted_per_gate_with_annotations() {
    let g = Gov::demo();
    pr_with_a_stub(&g);
    let f = fake(Arc::new(|_, _, _| (201, vec![], check_run_json())));
    let out = run_gate(&g, &f.url);
    assert_eq!(out.status.code(), Some(1), "the verdict is the gate's");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("posted 7 check run(s)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = f.seen.lock().unwrap();
    assert_eq!(seen.len(), 7);
    let stub = seen
        .iter()
        .find(|(_, _, b)| b["name"] == "treaty/temp-stub")
        .unwrap();
    assert_eq!(stub.0, "POST");
    assert_eq!(stub.1, "/repos/aurora/governance/check-runs");
    assert_eq!(stub.2["conclusion"], "failure");
    assert_eq!(
        stub.2["head_sha"].as_str().unwrap(),
        g.git(&["rev-parse", "HEAD"]).trim()
    );
    assert_eq!(stub.2["output"]["annotations"][0]["path"], "src/s.rs");
    assert_eq!(stub.2["output"]["annotations"][0]["start_line"], 2);
    let schema = seen
        .iter()
        .find(|(_, _, b)| b["name"] == "treaty/schema")
        .unwrap();
    assert_eq!(schema.2["conclusion"], "success");
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let g = Gov::demo();
    pr_with_a_stub(&g);
    // Each check run: first a 429 with retry-after, then a 502, then success.
    let f = fake(Arc::new(|_, _, n| match n % 3 {
        1 => (
            429,
            vec![("retry-after", "0".to_owned())],
            "{\"message\":\"API rate limit exceeded\"}".to_owned(),
        ),
        2 => (502, vec![], "{}".to_owned()),
        _ => (201, vec![], check_run_json()),
    }));
    let out = run_gate(&g, &f.url);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("posted 7 check run(s)"),
        "every gate got through after its retries: {err}"
    );
    assert_eq!(
        f.seen.lock().unwrap().len(),
        21,
        "a 429 and a 502 before each success"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn forbidden_check_runs_fall_back_to_commit_statuses() {
    let g = Gov::demo();
    pr_with_a_stub(&g);
    let f = fake(Arc::new(|_, path, _| {
        if path.ends_with("/check-runs") {
            (
                403,
                vec![],
                "{\"message\":\"Resource not accessible by integration\"}".to_owned(),
            )
        } else {
            (
                201,
                vec![],
                "{\"id\":1,\"state\":\"success\",\"context\":\"treaty\"}".to_owned(),
            )
        }
    }));
    let out = run_gate(&g, &f.url);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("falling back to commit statuses") && err.contains("7 status(es)"),
        "{err}"
    );
    let seen = f.seen.lock().unwrap();
    let st = seen
        .iter()
        .find(|(_, p, b)| p.contains("/statuses/") && b["context"] == "treaty/temp-stub")
        .unwrap();
    assert_eq!(st.2["state"], "failure");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn unauthorised_or_unreachable_api_never_changes_the_verdict() {
    let g = Gov::demo();
    g.git(&["checkout", "-q", "-b", "pr"]);
    g.write("src/ok.rs", "fn ok() {}\n");
    g.commit("fine");
    let f = fake(Arc::new(|_, _, _| {
        (401, vec![], "{\"message\":\"Bad credentials\"}".to_owned())
    }));
    let out = run_gate(&g, &f.url);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a passing gate passes whatever the API says"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"));
    // Nothing listening at all.
    let out = run_gate(&g, "http://127.0.0.1:9");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("posting failed"));
}
