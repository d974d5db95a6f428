//! `treaty-agent --serve` on the demo federation, as a process on loopback: decisions, ACKs,
//! usage, metrics; authentication (tokens, mutual TLS) and the role per route; every limit;
//! the drain on SIGTERM; stale law; and `kill -9` under load, 50 times. Orders are signed by
//! the demo federation's own keys (`dispatcher-1` orders, `reputation-1` attests, `akash-1`
//! is AURORA-AKASH-001's provider).

use crate::common::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use treaty::crypto::SigningKey;
use treaty::law::message::Kind;
use treaty::law::signed;

const AKASH_ID: &str = "AURORA-AKASH-001";

/// The demo federation, a bare remote of it, and the agent's state directory.
struct Site {
    g: Gov,
    remote: PathBuf,
    state: PathBuf,
}

/// How long after an agent is ready an order it decides is issued after its store's birth plus
/// the agents' skew (1 s): a shared store is born 2 s ahead of its server's clock (docs/law.md
/// § Scaling out), in whole seconds, and `issued <= birth + skew` is refused — so 2 + 1 + 1 s
/// past the opening, which came before readiness.
const SETTLE: Duration = Duration::from_millis(4_100);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A served agent; killed when dropped.
struct Agent {
    child: Child,
    port: u16,
    stderr: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200 (or the process ends).
    fn ready(&mut self) {
        for _ in 0..300 {
            if let Some((200, _)) = try_http(self.port, "GET", "/readyz", &[], b"") {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("the agent exited ({st}): {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the agent never became ready: {}", self.log());
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let (s, b) = http(self.port, "GET", path, headers, b"");
        (s, parse(&b))
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, serde_json::Value) {
        let (s, b) = http(self.port, "POST", path, headers, body);
        (s, parse(&b))
    }
}

fn parse(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(b).into_owned()))
}

/// One HTTP/1.1 request on a fresh connection: status and body (None: no answer).
fn try_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let status: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
    let at = out.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    Some((status, out[at..].to_vec()))
}

fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    try_http(port, method, path, headers, body)
        .unwrap_or_else(|| panic!("no HTTP answer to {method} {path}"))
}

impl Site {
    fn new() -> Site {
        Site::of(Gov::demo())
    }

    /// A site serving `g` as it stands (committed).
    fn of(g: Gov) -> Site {
        let remote = g.path("../remote.git");
        let st = Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(&g.dir)
            .arg(&remote)
            .status()
            .unwrap();
        assert!(st.success());
        Site {
            state: g.path("../agent-state"),
            remote,
            g,
        }
    }

    fn key(&self, id: &str) -> SigningKey {
        SigningKey::load(&self.g.path(&format!("demo-keys/{id}.key")), || {
            unreachable!("demo keys are unencrypted")
        })
        .unwrap()
    }

    fn command(&self, port: u16, extra: &[&str]) -> Command {
        self.command_at(&self.state, port, extra)
    }

    /// An agent of this site with its own state directory (several agents of one fleet).
    fn command_at(&self, state: &Path, port: u16, extra: &[&str]) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("treaty-agent"));
        c.args(["--interval", "60s", "--skew", "1s", "--serve"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--remote")
            .arg(&self.remote)
            .arg("--state")
            .arg(state)
            .arg("--spool")
            .arg(state.with_extension("spool"))
            .args(extra)
            .env_remove("TREATY_AGENT_TOKENS")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    }

    fn spawn_with(&self, extra: &[&str], env: &[(&str, &str)]) -> Agent {
        let port = free_port();
        let stderr = self.g.path(&format!("../agent-{port}.log"));
        let mut c = self.command(port, extra);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Agent {
            child,
            port,
            stderr,
        }
    }

    /// A served agent, ready, whose store is older than the skew (so new orders are not
    /// `state-too-new`).
    fn serve(&self, extra: &[&str]) -> Agent {
        let mut a = self.spawn_with(extra, &[]);
        a.ready();
        std::thread::sleep(SETTLE);
        a
    }

    fn attestation(&self, subject: &str, score_bp: u32) -> serde_json::Value {
        let now = treaty::time::now();
        let a = serde_json::json!({
            "spec_version": "1.0",
            "subject": subject,
            "score_bp": score_bp,
            "issued_at": treaty::time::format(now),
            "expires": plus(now, 3_600),
        });
        let env = signed::sign(
            &serde_json::to_vec(&a).unwrap(),
            Kind::Attestation,
            &self.key("reputation-1"),
        )
        .unwrap();
        serde_json::from_slice(&env).unwrap()
    }

    /// An order of AKASH (honest unless edited), issued now.
    fn order(&self, n: u64) -> serde_json::Value {
        let now = treaty::time::now();
        serde_json::json!({
            "spec_version": "1.0",
            "order_id": format!("ord-{n}"),
            "treaty_id": AKASH_ID,
            "nonce": format!("{n:032x}"),
            "issued_at": treaty::time::format(now),
            "not_after": plus(now, 600),
            "region": "us-east",
            "gpu_milli_hours": 1_000,
            "credits": 100,
            "attestation": self.attestation("dispatcher-1", 9_000),
        })
    }

    fn sign(&self, order: &serde_json::Value, by: &str) -> Vec<u8> {
        signed::sign(
            &serde_json::to_vec(order).unwrap(),
            Kind::Order,
            &self.key(by),
        )
        .unwrap()
    }

    fn ack(&self, signed_order: &[u8], status: &str, used: Option<u64>, by: &str) -> Vec<u8> {
        use sha2::Digest;
        let env: serde_json::Value = serde_json::from_slice(signed_order).unwrap();
        let payload = base64_decode(env["payload"].as_str().unwrap());
        let o: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        let mut a = serde_json::json!({
            "spec_version": "1.0",
            "order_id": o["order_id"],
            "treaty_id": o["treaty_id"],
            "order_sha256": hex::encode(sha2::Sha256::digest(&payload)),
            "status": status,
            "at": treaty::time::format(treaty::time::now()),
        });
        if let Some(u) = used {
            a["used_gpu_milli_hours"] = u.into();
        }
        signed::sign(&serde_json::to_vec(&a).unwrap(), Kind::Ack, &self.key(by)).unwrap()
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn plus(t: treaty::time::Instant, secs: i64) -> String {
    treaty::time::format(treaty::time::Instant::from_unix(t.unix() + secs).unwrap())
}

fn codes(v: &serde_json::Value) -> Vec<String> {
    v["denials"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| d["code"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The honest path and each class of denial, as a dispatcher and a provider see them.
#[test]
fn the_served_agent_decides_acks_reports_usage_and_logs_each_decision() {
    let site = Site::new();
    let a = site.serve(&["--log-format", "json"]);

    // Allowed, with the versions that decided.
    let o1 = site.sign(&site.order(1), "dispatcher-1");
    let (s, v) = a.post("/v1/decide", &[], &o1);
    assert_eq!((s, v["allowed"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(v["repeat"], false);
    assert_eq!(v["requester"], "dispatcher-1");
    assert_eq!(v["commit"].as_str().unwrap().len(), 40);
    assert!(v["root_version"].as_u64().is_some() && v["snapshot_version"].as_u64().is_some());
    // A retry of the same bytes learns the same decision; so does GET.
    let (s, again) = a.post("/v1/decide", &[], &o1);
    assert_eq!((s, &again["repeat"]), (200, &serde_json::json!(true)));
    assert_eq!(again["decided_at"], v["decided_at"]);
    let (s, got) = a.get("/v1/orders/ord-1", &[]);
    assert_eq!((s, &got["allowed"]), (200, &serde_json::json!(true)));
    assert_eq!(a.get("/v1/orders/ord-404", &[]).0, 404);

    // Another message with a used nonce: replayed, 409, nothing recorded.
    let mut other = site.order(1);
    other["order_id"] = "ord-1-bis".into();
    let (s, v) = a.post("/v1/decide", &[], &site.sign(&other, "dispatcher-1"));
    assert_eq!((s, codes(&v)), (409, vec!["replayed".to_owned()]), "{v}");
    assert_eq!(a.get("/v1/orders/ord-1-bis", &[]).0, 404);

    // A decided denial: 200, allowed false, every failed constraint with its numbers.
    let mut o = site.order(2);
    o["credits"] = 9_999.into();
    o["region"] = "mars-1".into();
    let (s, v) = a.post("/v1/decide", &[], &site.sign(&o, "dispatcher-1"));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["allowed"], false);
    let mut c = codes(&v);
    c.sort();
    c.dedup();
    assert_eq!(c, ["credits-over-order-limit", "region-not-allowed"], "{v}");
    let credit = v["denials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "credits-over-order-limit")
        .unwrap();
    assert_eq!(credit["asked"], 9_999);
    assert!(credit["allowed"].as_u64().is_some());

    // Messages that are not decided: a 4xx with the code, no state change.
    let mut unsigned_by_dispatcher = site.order(3);
    unsigned_by_dispatcher["order_id"] = "ord-3".into();
    let rows: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("not JSON", b"{".to_vec(), 400, "order-malformed"),
        (
            "signed by a provider, not the orders role",
            site.sign(&unsigned_by_dispatcher, "akash-1"),
            403,
            "order-signer-unknown",
        ),
        (
            "expired",
            {
                let mut o = site.order(4);
                let past =
                    treaty::time::Instant::from_unix(treaty::time::now().unix() - 7_200).unwrap();
                o["issued_at"] = treaty::time::format(past).into();
                o["not_after"] = plus(past, 600).into();
                site.sign(&o, "dispatcher-1")
            },
            422,
            "order-expired",
        ),
        (
            "future-dated",
            {
                let mut o = site.order(5);
                let later =
                    treaty::time::Instant::from_unix(treaty::time::now().unix() + 3_600).unwrap();
                o["issued_at"] = treaty::time::format(later).into();
                o["not_after"] = plus(later, 600).into();
                site.sign(&o, "dispatcher-1")
            },
            422,
            "issued-in-future",
        ),
    ];
    for (name, body, status, code) in rows {
        let (s, v) = a.post("/v1/decide", &[], &body);
        assert_eq!(
            (s, codes(&v)),
            (status, vec![code.to_owned()]),
            "{name}: {v}"
        );
    }
    for id in ["ord-3", "ord-4", "ord-5"] {
        assert_eq!(
            a.get(&format!("/v1/orders/{id}"), &[]).0,
            404,
            "{id} left state"
        );
    }

    // The provider: accepted (a running job), then completed with the usage consumed.
    let (s, v) = a.post("/v1/acks", &[], &site.ack(&o1, "accepted", None, "akash-1"));
    assert_eq!(
        (s, &v["outcome"]),
        (200, &serde_json::json!("running")),
        "{v}"
    );
    let (s, u) = a.get(&format!("/v1/treaties/{AKASH_ID}/usage"), &[]);
    assert_eq!((s, &u["running"]), (200, &serde_json::json!(1)), "{u}");
    // An ACK signed by another network's provider: not this treaty's provider.
    let (s, v) = a.post(
        "/v1/acks",
        &[],
        &site.ack(&o1, "completed", Some(1), "ionet-1"),
    );
    assert_eq!(
        (s, codes(&v)),
        (403, vec!["ack-signer-not-provider".to_owned()]),
        "{v}"
    );
    let (s, v) = a.post(
        "/v1/acks",
        &[],
        &site.ack(&o1, "completed", Some(400), "akash-1"),
    );
    assert_eq!(
        (s, &v["outcome"]),
        (200, &serde_json::json!("ended")),
        "{v}"
    );
    let (_, u) = a.get(&format!("/v1/treaties/{AKASH_ID}/usage"), &[]);
    assert_eq!(u["running"], 0, "{u}");
    assert_eq!(
        u["gpu_milli_hours_today"], 400,
        "the usage consumed, not the hold: {u}"
    );
    assert_eq!(
        u["gpu_milli_hours_remaining"].as_u64().unwrap() + 400,
        u["gpu_milli_hours_per_day"].as_u64().unwrap()
    );
    assert_eq!(a.get("/v1/treaties/NOPE/usage", &[]).0, 404);

    // A decided order sent again after it expired still learns its decision.
    let mut short = site.order(6);
    let now = treaty::time::now();
    short["not_after"] = plus(now, 1).into();
    let short = site.sign(&short, "dispatcher-1");
    let (s, first) = a.post("/v1/decide", &[], &short);
    assert_eq!(
        (s, &first["allowed"]),
        (200, &serde_json::json!(true)),
        "{first}"
    );
    std::thread::sleep(Duration::from_millis(3_200));
    let (s, again) = a.post("/v1/decide", &[], &short);
    assert_eq!(
        (s, &again["repeat"]),
        (200, &serde_json::json!(true)),
        "{again}"
    );
    assert_eq!(again["decided_at"], first["decided_at"]);

    // KPIs and SLOs on /metrics; one JSON log line per decision.
    let (s, m) = http(a.port, "GET", "/metrics", &[], b"");
    let m = String::from_utf8_lossy(&m);
    assert_eq!(s, 200);
    for want in [
        "treaty_law_decisions_total{treaty=\"AURORA-AKASH-001\",outcome=\"allowed\"} 2",
        "treaty_law_denials_total{reason=\"credits-over-order-limit\"} 1",
        "treaty_law_refused_total{reason=\"replayed\"} 1",
        "treaty_law_slo_target{treaty=\"AURORA-AKASH-001\",slo=\"rtt_p95_ms_max\"}",
        "treaty_law_slo_measured{treaty=\"AURORA-AKASH-001\",slo=\"fill_rate_p95_min\"} 0.5",
        "treaty_law_quota_remaining{treaty=\"AURORA-AKASH-001\",quota=\"concurrent_jobs\"}",
        "treaty_law_ack_rtt_seconds_count 1",
        "treaty_agent_applied_snapshot_version",
    ] {
        assert!(m.contains(want), "{want} missing from:\n{m}");
    }
    let log = a.log();
    let line = log
        .lines()
        .find(|l| l.contains("\"treaty_agent::decision\"") && l.contains("\"order_id\":\"ord-2\""))
        .unwrap_or_else(|| panic!("no decision line for ord-2 in:\n{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["allowed"], false, "{line}");
    assert!(v["codes"]
        .as_str()
        .unwrap()
        .contains("credits-over-order-limit"));
}

const DISPATCHER: &str = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1";
const PROVIDER: &str = "p2p2p2p2p2p2p2p2p2p2p2p2p2p2p2p2";
const OPERATOR: &str = "o3o3o3o3o3o3o3o3o3o3o3o3o3o3o3o3";

fn bearer(t: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {t}"))
}

/// Tokens from a 0600 file: each route admits its role only; a missing or wrong token is 401.
#[test]
fn bearer_tokens_grant_one_role_each_and_are_read_from_a_private_file_or_the_environment() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new();
    let tokens = site.g.path("../tokens");
    std::fs::write(
        &tokens,
        format!("dispatcher:{DISPATCHER}\nprovider:{PROVIDER}\noperator:{OPERATOR}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = site
        .command(free_port(), &["--tokens", tokens.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();

    let a = site.serve(&["--tokens", tokens.to_str().unwrap()]);
    let order = site.sign(&site.order(10), "dispatcher-1");
    let h = |t: &str| {
        let (k, v) = bearer(t);
        (k, v)
    };
    let (k, v) = h(DISPATCHER);
    let as_dispatcher = [(k, v.as_str())];
    let (k, v2) = h(PROVIDER);
    let as_provider = [(k, v2.as_str())];
    let (k, v3) = h(OPERATOR);
    let as_operator = [(k, v3.as_str())];
    let wrong = [("Authorization", "Bearer d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d0")];
    assert_eq!(a.post("/v1/decide", &[], &order).0, 401);
    assert_eq!(a.post("/v1/decide", &wrong, &order).0, 401);
    assert_eq!(a.post("/v1/decide", &as_provider, &order).0, 403);
    assert_eq!(a.post("/v1/decide", &as_operator, &order).0, 403);
    let (s, v) = a.post("/v1/decide", &as_dispatcher, &order);
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(true)), "{v}");
    let ack = site.ack(&order, "accepted", None, "akash-1");
    assert_eq!(a.post("/v1/acks", &as_dispatcher, &ack).0, 403);
    assert_eq!(a.post("/v1/acks", &as_provider, &ack).0, 200);
    let usage = format!("/v1/treaties/{AKASH_ID}/usage");
    assert_eq!(a.get(&usage, &as_dispatcher).0, 403);
    assert_eq!(a.get(&usage, &as_operator).0, 200);
    assert_eq!(a.get("/metrics", &[]).0, 401);
    assert_eq!(a.get("/metrics", &as_operator).0, 200);
    assert_eq!(a.get("/v1/orders/ord-10", &as_dispatcher).0, 200);
    assert_eq!(a.get("/v1/orders/ord-10", &as_provider).0, 403);
    // Probes need no credential.
    assert_eq!(a.get("/readyz", &[]).0, 200);
    assert_eq!(a.get("/healthz", &[]).0, 200);
    // Guessing is rate-limited by address: a burst of wrong tokens turns into 429s, while
    // the right credential from the same address is still served.
    std::thread::sleep(Duration::from_millis(1_100));
    let guesses: Vec<u16> = (0..30)
        .map(|_| a.get("/v1/orders/ord-10", &wrong).0)
        .collect();
    let limited = guesses.iter().filter(|s| **s == 429).count();
    assert!(
        guesses.iter().take(10).all(|s| *s == 401) && limited >= 15,
        "{guesses:?}"
    );
    assert_eq!(a.get("/v1/orders/ord-10", &as_dispatcher).0, 200);
    drop(a);

    // The same from the environment; a weak token there is refused at start.
    let a = site.spawn_with(
        &[],
        &[("TREATY_AGENT_TOKENS", &format!("operator:{OPERATOR}"))],
    );
    let mut a = a;
    a.ready();
    assert_eq!(a.get("/metrics", &[]).0, 401);
    assert_eq!(a.get("/metrics", &as_operator).0, 200);
    drop(a);
    let out = site
        .command(free_port(), &[])
        .env("TREATY_AGENT_TOKENS", "operator:short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TREATY_AGENT_TOKENS") && err.contains("shorter"),
        "{err}"
    );
}

/// Off loopback the agent refuses to start without TLS, and without client authentication;
/// --serve never takes --allow-stale.
#[test]
fn serving_off_loopback_needs_tls_and_authentication_and_never_stale_law() {
    let site = Site::new();
    let run = |args: &[&str]| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("treaty-agent"));
        c.args(args)
            .arg("--remote")
            .arg(&site.remote)
            .arg("--state")
            .arg(&site.state)
            .env_remove("TREATY_AGENT_TOKENS");
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--serve", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("TLS is required"), "{err}");
    let pki = Pki::new(&site.g.path("../pki"));
    let (code, err) = run(&[
        "--serve",
        "0.0.0.0:0",
        "--tls-cert",
        pki.path("server.pem").to_str().unwrap(),
        "--tls-key",
        pki.path("server.key").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("must authenticate"), "{err}");
    let (code, err) = run(&["--serve", "127.0.0.1:0", "--allow-stale"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["--serve", "127.0.0.1:0", "--rego-budget-ms", "0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--rego-budget-ms"), "{err}");
    let cfg = site.g.path("../agent.toml");
    std::fs::write(&cfg, "serve = \"127.0.0.1:0\"\nallow-stale = true\n").unwrap();
    let (code, err) = run(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("only fresh law decides"), "{err}");
}

/// A CA, a server certificate for 127.0.0.1 and client certificates whose OU is a role, made
/// by the real `openssl`.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let sh = |script: &str| {
            let st = Command::new("sh")
                .arg("-ec")
                .arg(script)
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "{script}");
        };
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=treaty-test-ca");
        let leaf = |name: &str, subj: &str, ext: &str| {
            sh(&format!(
                "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key -out {name}.csr -subj '{subj}'\n\
                 printf '%s\\n' '{ext}' > {name}.ext\n\
                 openssl x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {name}.pem -days 2 -extfile {name}.ext"
            ));
        };
        leaf(
            "server",
            "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        );
        for role in ["dispatcher", "operator"] {
            leaf(
                role,
                &format!("/CN={role}-client/OU={role}"),
                "extendedKeyUsage=clientAuth",
            );
        }
        // Two roles in one certificate, and a role without the clientAuth usage: no role.
        leaf(
            "two-roles",
            "/CN=both/OU=dispatcher/OU=operator",
            "extendedKeyUsage=clientAuth",
        );
        leaf(
            "no-usage",
            "/CN=plain/OU=dispatcher",
            "basicConstraints=CA:FALSE",
        );
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Mutual TLS with the real `curl`: the certificate's OU is the role; no certificate, no
/// connection.
#[test]
fn mutual_tls_admits_the_role_in_the_client_certificate_and_nothing_without_one() {
    let site = Site::new();
    let pki = Pki::new(&site.g.path("../pki"));
    let p = |n: &str| pki.path(n).to_str().unwrap().to_owned();
    let a = site.serve_tls(&[
        "--tls-cert",
        &p("server.pem"),
        "--tls-key",
        &p("server.key"),
        "--client-ca",
        &p("ca.pem"),
    ]);
    let order = site.g.path("../order.json");
    std::fs::write(&order, site.sign(&site.order(20), "dispatcher-1")).unwrap();
    let curl = |cert: Option<&str>, method: &str, path: &str| -> (i32, String) {
        let mut c = Command::new("curl");
        c.args([
            "-s",
            "-o",
            "-",
            "-w",
            "\\n%{http_code}",
            "--cacert",
            &p("ca.pem"),
        ]);
        if let Some(c2) = cert {
            c.args([
                "--cert",
                &p(&format!("{c2}.pem")),
                "--key",
                &p(&format!("{c2}.key")),
            ]);
        }
        if method == "POST" {
            c.arg("--data-binary").arg(format!("@{}", order.display()));
        }
        c.arg(format!("https://127.0.0.1:{}{path}", a.port));
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = curl(Some("dispatcher"), "POST", "/v1/decide");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.ends_with("\n200") && out.contains("\"allowed\":true"),
        "{out}"
    );
    let (_, out) = curl(Some("operator"), "POST", "/v1/decide");
    assert!(out.ends_with("\n403"), "{out}");
    let (_, out) = curl(
        Some("operator"),
        "GET",
        &format!("/v1/treaties/{AKASH_ID}/usage"),
    );
    assert!(out.ends_with("\n200"), "{out}");
    for cert in ["two-roles", "no-usage"] {
        let (_, out) = curl(Some(cert), "POST", "/v1/decide");
        assert!(out.ends_with("\n403"), "{cert}: {out}");
    }
    let (code, out) = curl(None, "GET", "/readyz");
    assert_ne!(
        code, 0,
        "a TLS handshake without a client certificate must fail: {out}"
    );
    // Plain HTTP to the TLS port gets no answer.
    assert!(try_http(a.port, "GET", "/readyz", &[], b"").is_none_or(|(s, _)| s != 200));
}

impl Site {
    /// Like [`Site::serve`], probing readiness over TLS with `curl`.
    fn serve_tls(&self, extra: &[&str]) -> Agent {
        let a = self.spawn_with(extra, &[]);
        let ca = extra
            .iter()
            .position(|x| *x == "--client-ca")
            .map(|i| extra[i + 1]);
        for _ in 0..300 {
            let mut c = Command::new("curl");
            c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
            if let Some(ca) = ca {
                let dir = Path::new(ca).parent().unwrap();
                c.arg("--cacert")
                    .arg(ca)
                    .arg("--cert")
                    .arg(dir.join("operator.pem"))
                    .arg("--key")
                    .arg(dir.join("operator.key"));
            }
            c.arg(format!("https://127.0.0.1:{}/readyz", a.port));
            if c.output().is_ok_and(|o| o.stdout == b"200") {
                std::thread::sleep(SETTLE);
                return a;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("never ready over TLS: {}", a.log());
    }
}

/// Each limit, with the flag that sets it: body size (413), per-caller rate (429), request
/// time (408), connections (closed on accept), and series per treaty on /metrics.
#[test]
fn every_limit_holds_and_says_which() {
    let site = Site::new();
    let a = site.serve(&[
        "--max-body",
        "16384",
        "--rate",
        "20",
        "--request-timeout",
        "1s",
        "--max-connections",
        "4",
        "--max-treaty-series",
        "1",
    ]);
    let big = vec![b' '; 17_000];
    let (s, v) = a.post("/v1/decide", &[], &big);
    assert_eq!(
        (s, &v["error"]["code"]),
        (413, &serde_json::json!("request-too-large")),
        "{v}"
    );

    // A body that never finishes: answered 408 within the request time.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let started = Instant::now();
    let mut got = String::new();
    let _ = slow.read_to_string(&mut got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Connections over the limit are closed on accept.
    let held: Vec<std::net::TcpStream> = (0..4)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut b = Vec::new();
    let started = Instant::now();
    match extra.read_to_end(&mut b) {
        // Closed (EOF) or reset: either way not served, and at once (not a read timeout).
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("over the limit: {other:?} {}", String::from_utf8_lossy(&b)),
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "not closed at once"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let (_, m) = http(a.port, "GET", "/metrics", &[], b"");
    assert!(
        !String::from_utf8_lossy(&m).contains("treaty_agent_connections_refused_total 0\n"),
        "the refusal is counted"
    );

    // The rate: a burst of 20 a second per caller, then 429.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(http(a.port, "GET", "/v1/orders/none", &[], b"").0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 404).count() >= 15,
        "{statuses:?}"
    );
    std::thread::sleep(Duration::from_millis(1_100));

    // Series: one treaty of its own, the rest `_other`.
    for (n, treaty) in [
        (30, AKASH_ID),
        (31, "AURORA-IONET-001"),
        (32, "AURORA-FLUX-001"),
    ] {
        let mut o = site.order(n);
        o["treaty_id"] = treaty.into();
        let (s, _) = a.post("/v1/decide", &[], &site.sign(&o, "dispatcher-1"));
        assert_eq!(s, 200);
    }
    let (_, m) = http(a.port, "GET", "/metrics", &[], b"");
    let m = String::from_utf8_lossy(&m);
    let decisions: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("treaty_law_decisions_total{"))
        .collect();
    assert_eq!(decisions.len(), 4, "{decisions:?}");
    assert!(
        decisions.iter().any(|l| l.contains("treaty=\"_other\"")),
        "{decisions:?}"
    );
}

/// One address cannot hold every connection: past its share, its next connection is closed on
/// accept (before a byte is read, so before any authentication), while another address is
/// still served; a closed connection gives its share back.
#[test]
fn one_address_cannot_hold_every_connection() {
    let site = Site::new();
    let a = site.serve(&[
        "--max-connections",
        "16",
        "--max-connections-per-address",
        "2",
    ]);
    let closed_at_once = |mut s: std::net::TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut b = Vec::new();
        let started = Instant::now();
        let served = match s.read_to_end(&mut b) {
            Ok(0) => false,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            _ => true,
        };
        (!served && started.elapsed() < Duration::from_secs(4), b)
    };
    let held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (closed, b) = closed_at_once(std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap());
    assert!(
        closed,
        "a third connection from 127.0.0.1 was served: {b:?}"
    );
    // Another loopback address is another client: served.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--interface",
            "127.0.0.2",
        ])
        .arg(format!("http://127.0.0.1:{}/healthz", a.port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{}", a.log());
    // The two held ones close: 127.0.0.1 is served again.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let (s, _) = http(a.port, "GET", "/healthz", &[], b"");
    assert_eq!(s, 200);
    let (_, m) = http(a.port, "GET", "/metrics", &[], b"");
    assert!(
        String::from_utf8_lossy(&m).contains("treaty_agent_connections_refused_total 1\n"),
        "{}",
        String::from_utf8_lossy(&m)
    );
    // Out of range: refused at start, naming the flag.
    drop(a);
    let out = site
        .command(free_port(), &["--max-connections-per-address", "0"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--max-connections-per-address 0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SIGTERM: new connections are refused, the request in flight is answered, the agent exits 0.
#[test]
fn sigterm_drains_the_request_in_flight_then_exits() {
    let site = Site::new();
    let mut a = site.serve(&[]);
    let body = site.sign(&site.order(40), "dispatcher-1");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!(
            "POST /v1/decide HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    s.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let st = Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        try_http(a.port, "GET", "/healthz", &[], b"").is_none(),
        "a new connection was served after SIGTERM"
    );
    s.write_all(&body[10..]).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"allowed\":true"), "{out}");
    let started = Instant::now();
    let code = loop {
        if let Some(st) = a.child.try_wait().unwrap() {
            break st.code();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0), "{}", a.log());
}

/// Only fresh law decides: past the heartbeat's age limit plus the skew, every order is
/// `state-stale` (503) and /readyz says why.
#[test]
fn past_the_heartbeat_deadline_every_order_is_state_stale() {
    let site = Site::new();
    // A heartbeat issued now; the agent accepts it for 10 s plus the 1 s skew.
    site.g
        .treaty()
        .args(["heartbeat", "--key", "demo-keys/ci-1.key"])
        .assert()
        .success();
    site.g.commit("heartbeat");
    site.g
        .git(&["push", "-q", site.remote.to_str().unwrap(), "HEAD:main"]);
    let issued = Instant::now();
    let mut a = site.spawn_with(&["--max-heartbeat-age", "10s"], &[]);
    a.ready();
    std::thread::sleep(SETTLE);
    let (s, v) = a.post(
        "/v1/decide",
        &[],
        &site.sign(&site.order(50), "dispatcher-1"),
    );
    assert!(
        issued.elapsed() < Duration::from_secs(9),
        "too slow to test freshness ({:?})",
        issued.elapsed()
    );
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(true)), "{v}");
    std::thread::sleep(Duration::from_secs(13).saturating_sub(issued.elapsed()));
    let (s, v) = a.post(
        "/v1/decide",
        &[],
        &site.sign(&site.order(51), "dispatcher-1"),
    );
    assert_eq!((s, codes(&v)), (503, vec!["state-stale".to_owned()]), "{v}");
    let (s, v) = a.get("/readyz", &[]);
    assert_eq!(
        (s, &v["error"]["code"]),
        (503, &serde_json::json!("not-ready")),
        "{v}"
    );
    assert_eq!(a.get("/v1/orders/ord-51", &[]).0, 404);
}

/// `kill -9` of the serving agent at random points under load, 50 times: no order is decided
/// twice differently, no answered decision is lost, the treaty's concurrency is never
/// over-spent, and at most one reservation per kill exists that no caller heard of.
#[test]
fn kill_9_under_load_fifty_times_never_doubles_a_nonce_or_overspends_a_quota() {
    let site = Site::new();
    // AKASH allows 64 concurrent jobs; no ACK is sent, so every allowed order holds one until
    // its reservation expires (1 h here): more than 64 held would be an over-spent quota.
    let args = ["--reservation-ttl", "1h"];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut answers: Vec<(usize, serde_json::Value)> = Vec::new();
    let mut kills = 0;
    for round in 0..50u64 {
        let mut a = site.spawn_with(&args, &[]);
        a.ready();
        // Every start is a new birth: orders are signed after it plus the skew (1 s).
        std::thread::sleep(Duration::from_millis(1_100));
        let mut batch: Vec<(usize, Vec<u8>)> = Vec::new();
        for i in 0..8 {
            let o = site.sign(&site.order(10_000 + round * 10 + i), "dispatcher-1");
            sent.push(o.clone());
            batch.push((sent.len() - 1, o));
            // Now and then a resubmission of an earlier order (decided or not).
            if i % 3 == 2 && sent.len() > 8 {
                let k = (next() as usize) % (sent.len() - 8);
                batch.push((k, sent[k].clone()));
            }
        }
        let port = a.port;
        let load = std::thread::spawn(move || {
            let mut got = Vec::new();
            for (k, body) in batch {
                match try_http(port, "POST", "/v1/decide", &[], &body) {
                    Some((s, b)) => got.push((k, s, parse(&b))),
                    None => break,
                }
            }
            got
        });
        std::thread::sleep(Duration::from_millis(20 + next() % 100));
        // SIGKILL: no destructor, no flush.
        a.child.kill().unwrap();
        let _ = a.child.wait();
        kills += 1;
        for (k, s, v) in load.join().unwrap() {
            assert!(matches!(s, 200 | 409), "round {round}: {s} {v}");
            if s == 200 {
                answers.push((k, v));
            }
        }
    }
    // A last agent, not killed: every decision answered is still on record.
    let a = site.serve(&args);
    let mut first_seen = std::collections::BTreeMap::new();
    for (k, v) in &answers {
        // The same message always gets the same decision, whichever agent answered.
        let first = first_seen.entry(*k).or_insert_with(|| v.clone());
        assert_eq!(
            first["allowed"], v["allowed"],
            "order {k} decided twice differently"
        );
        assert_eq!(
            first["decided_at"], v["decided_at"],
            "order {k} decided twice"
        );
    }
    let allowed = first_seen.values().filter(|v| v["allowed"] == true).count();
    let (_, u) = a.get(&format!("/v1/treaties/{AKASH_ID}/usage"), &[]);
    let reserved = u["reserved"].as_u64().unwrap() as usize;
    assert!(
        reserved <= 64,
        "quota over-spent: {reserved} reservations for 64 jobs"
    );
    assert!(
        reserved >= allowed,
        "an allowed answer's reservation was lost: {reserved} held, {allowed} answered allowed"
    );
    // Decided and durable, killed before the answer: at most one per kill.
    assert!(
        reserved <= allowed + kills,
        "leaked: {reserved} held for {allowed} answered"
    );
    for (k, v) in &first_seen {
        let (s, got) = a.get(
            &format!("/v1/orders/{}", v["order_id"].as_str().unwrap()),
            &[],
        );
        assert_eq!(s, 200, "order {k} answered but not recorded");
        assert_eq!(got["decided_at"], v["decided_at"]);
    }
    // The kills landed under load.
    assert!(
        allowed >= 16,
        "too few orders allowed to test anything: {allowed}"
    );
    // Then fill the quota on the last agent: what the killed agents reserved still counts, so
    // exactly 64 - reserved more are allowed, and the rest are denied for concurrency.
    let mut more = 0;
    let mut capped = false;
    for n in 0..(70 - reserved.min(64) as u64 + 5) {
        let (s, v) = a.post(
            "/v1/decide",
            &[],
            &site.sign(&site.order(90_000 + n), "dispatcher-1"),
        );
        assert_eq!(s, 200, "{v}");
        if v["allowed"] == true {
            more += 1;
        } else {
            capped |= codes(&v).iter().any(|c| c == "concurrent-jobs-over-quota");
        }
    }
    assert_eq!(
        reserved + more,
        64,
        "{reserved} held after the kills, {more} allowed after"
    );
    assert!(capped, "the quota must deny once full");
    let (_, u) = a.get(&format!("/v1/treaties/{AKASH_ID}/usage"), &[]);
    assert_eq!(u["reserved"], 64, "{u}");
    eprintln!(
        "kill -9 x{kills}: {} answers, {allowed} allowed, {reserved} held",
        answers.len()
    );
}

/// Approved Rego rules add their denials to the served decision; the honest order passes.
#[test]
fn approved_rego_rules_add_denials_to_served_decisions() {
    let site = Site::new();
    site.g.write(
        "policies/limits.rego",
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies/limits.rego"))
            .unwrap(),
    );
    site.g
        .sign("policies/limits.rego", &["council-1", "council-2"]);
    site.g.commit("rules");
    for cmd in ["snapshot", "heartbeat"] {
        site.g
            .treaty()
            .args([cmd, "--key", "demo-keys/ci-1.key"])
            .assert()
            .success();
    }
    site.g.commit("snapshot");
    site.g
        .git(&["push", "-q", site.remote.to_str().unwrap(), "HEAD:main"]);
    let a = site.serve(&[]);
    let mut big = site.order(60);
    big["gpu_milli_hours"] = 150_000.into();
    let (s, v) = a.post("/v1/decide", &[], &site.sign(&big, "dispatcher-1"));
    assert_eq!(s, 200, "{v}");
    assert_eq!(codes(&v), ["rego-order-too-large"], "{v}");
    assert!(v["denials"][0]["message"]
        .as_str()
        .unwrap()
        .contains("150000"));
    let (s, v) = a.post(
        "/v1/decide",
        &[],
        &site.sign(&site.order(61), "dispatcher-1"),
    );
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(true)), "{v}");
}

/// The people's path: `treaty order new|attest|sign|check` and `treaty ack sign|verify`.
#[test]
fn order_and_ack_commands_sign_what_the_agent_accepts_and_check_offline_never_allows() {
    let site = Site::new();
    // Served first: an order issued before the agent's store began is `state-too-new`.
    let a = site.serve(&[]);
    let t = |args: &[&str]| site.g.treaty().args(args).output().unwrap();
    let out = t(&[
        "order",
        "attest",
        "--subject",
        "dispatcher-1",
        "--score",
        "0.9",
        "--key",
        "demo-keys/reputation-1.key",
    ]);
    assert!(out.status.success());
    site.g.write("../att.json", &out.stdout);
    let out = t(&[
        "order",
        "new",
        "--treaty",
        AKASH_ID,
        "--region",
        "us-east",
        "--gpu-milli-hours",
        "1500",
        "--credits",
        "1200",
        "--attestation",
        "../att.json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    site.g.write("../order.json", &out.stdout);
    let out = t(&[
        "order",
        "sign",
        "../order.json",
        "--key",
        "demo-keys/dispatcher-1.key",
    ]);
    assert!(out.status.success());
    site.g.write("../order.signed.json", &out.stdout);
    // Offline: every stateless check passes, replay and quota usage are not evaluated, exit 1.
    let out = t(&["order", "check", "../order.signed.json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not-evaluated: replay") && err.contains("not allowed offline"),
        "{err}"
    );
    let out = t(&["order", "check", "../order.signed.json", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["allowed"], serde_json::Value::Null);
    assert_eq!(v["denials"], serde_json::json!([]));
    // Signed by the wrong role: a denial named.
    let out = t(&[
        "order",
        "sign",
        "../order.json",
        "--key",
        "demo-keys/akash-1.key",
    ]);
    site.g.write("../order.akash.json", &out.stdout);
    let out = t(&["order", "check", "../order.akash.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("order-signer-unknown"));
    // Not an approved repository: cannot judge.
    let out = Command::new(assert_cmd::cargo::cargo_bin("treaty"))
        .args(["order", "check"])
        .arg(site.g.path("../order.signed.json"))
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // The agent allows what the commands made; the provider's signed ACK verifies offline.
    let order = site.g.read("../order.signed.json");
    let (s, v) = a.post("/v1/decide", &[], &order);
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(true)), "{v}");
    let out = t(&[
        "ack",
        "sign",
        "--order",
        "../order.signed.json",
        "--status",
        "accepted",
        "--key",
        "demo-keys/akash-1.key",
    ]);
    assert!(out.status.success());
    site.g.write("../ack.json", &out.stdout);
    assert_eq!(t(&["ack", "verify", "../ack.json"]).status.code(), Some(0));
    let (s, v) = a.post("/v1/acks", &[], &out.stdout);
    assert_eq!(
        (s, &v["outcome"]),
        (200, &serde_json::json!("running")),
        "{v}"
    );
    let out = t(&[
        "ack",
        "sign",
        "--order",
        "../order.signed.json",
        "--status",
        "accepted",
        "--key",
        "demo-keys/ionet-1.key",
    ]);
    site.g.write("../ack.ionet.json", &out.stdout);
    let out = t(&["ack", "verify", "../ack.ionet.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ack-signer-not-provider"));
}

/// A `redis-server` on loopback without persistence (installed by .ci/setup: missing, the test
/// fails), killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (installed by .ci/setup) must be on PATH");
        let r = Redis { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server never listened");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two agents on one Redis are one decision point: an order decided by one is a repeat at
/// the other, its nonce in another message is a replay there; with Redis gone neither
/// decides (503, not ready) and neither falls back to local state.
#[test]
fn two_agents_on_one_redis_share_nonces_and_stop_deciding_without_it() {
    let redis = Redis::start();
    let (one, two) = (Site::new(), Site::new());
    let url = redis.url();
    let a = one.serve(&["--state-url", &url]);
    let b = two.serve(&["--state-url", &url, "--state-timeout", "300ms"]);
    let order = one.order(70);
    let signed_order = one.sign(&order, "dispatcher-1");
    let (s, v) = a.post("/v1/decide", &[], &signed_order);
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(true)), "{v}");
    // The same bytes at the other agent: the recorded decision, not a second one.
    let (s, v) = b.post("/v1/decide", &[], &signed_order);
    assert_eq!((s, &v["repeat"]), (200, &serde_json::json!(true)), "{v}");
    // Another message with that nonce, at the other agent: a replay.
    let mut other = order.clone();
    other["order_id"] = "ord-70-bis".into();
    let (s, v) = b.post("/v1/decide", &[], &two.sign(&other, "dispatcher-1"));
    assert_eq!(
        (s, &v["denials"][0]["code"]),
        (409, &serde_json::json!("replayed")),
        "{v}"
    );
    // Nothing on local disk: the embedded store was never opened.
    assert!(!one.state.join("law").exists());
    drop(redis);
    let (s, v) = a.post("/v1/decide", &[], &one.sign(&one.order(71), "dispatcher-1"));
    assert_eq!(s, 503, "{v}");
    assert_eq!(a.get("/readyz", &[]).0, 503);
    assert_eq!(b.get("/readyz", &[]).0, 503);
}

/// The audit log entries of an agent's mirror, as JSON.
fn audit_entries(state: &Path) -> Vec<serde_json::Value> {
    let mirror = git2::Repository::open_bare(state.join("mirror.git")).unwrap();
    let s = treaty::audit::store::scan(
        &mirror,
        treaty::audit::store::resolve(&mirror, None).unwrap(),
        None,
        true,
    )
    .unwrap();
    s.entries
        .iter()
        .map(|e| serde_json::from_slice(e).unwrap())
        .collect()
}

fn agent_state(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("treaty-agent"));
    c.arg("state")
        .args(args)
        .env("TREATY_OPERATOR", "ops-alice");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `treaty-agent state stats` reads the embedded store while its agent runs; `clear`
/// refuses without --confirm, without a reason and while the agent holds the store, and
/// otherwise forgets the state and moves its birth: the order decided before is refused
/// after (never allowed twice). Every run that acted is in the audit log, with its reason.
#[test]
fn operators_read_and_clear_the_embedded_state_and_the_audit_log_records_it() {
    let site = Site::new();
    let state = site.state.to_str().unwrap().to_owned();
    let mut a = site.serve(&[]);
    let signed_order = site.sign(&site.order(80), "dispatcher-1");
    let (s, v) = a.post("/v1/decide", &[], &signed_order);
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(true)), "{v}");

    let (code, out, err) = agent_state(&["stats", "--state", &state, "--format", "json"], &[]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            &v["stats"]["nonces"],
            &v["stats"]["decisions"],
            &v["stats"]["reserved"]
        ),
        (&1.into(), &1.into(), &1.into()),
        "{v}"
    );
    let entries = audit_entries(&site.state);
    let last = entries.last().unwrap();
    assert_eq!(
        (&last["kind"], &last["details"]["operator"]),
        (&"agent.state-stats".into(), &"ops-alice".into()),
        "{last}"
    );
    let logged = entries.len();

    // Refusals: each exits 2 and changes nothing (the log neither).
    for (args, says) in [
        (
            vec!["clear", "--state", &state, "--reason", "drill"],
            "--confirm",
        ),
        (
            vec!["clear", "--state", &state, "--reason", "  ", "--confirm"],
            "say why",
        ),
        (
            vec![
                "clear",
                "--state",
                &state,
                "--reason",
                "a\u{1b}[2Jb",
                "--confirm",
            ],
            "control",
        ),
        (
            vec!["clear", "--state", &state, "--reason", "drill", "--confirm"],
            "stop it first",
        ),
    ] {
        let (code, _, err) = agent_state(&args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(audit_entries(&site.state).len(), logged);
    let (s, v) = a.post("/v1/decide", &[], &signed_order);
    assert_eq!((s, &v["repeat"]), (200, &serde_json::json!(true)), "{v}");

    // Stopped, cleared.
    drop(a);
    let (code, out, err) = agent_state(
        &[
            "clear",
            "--state",
            &state,
            "--reason",
            "INC-7: drill",
            "--confirm",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cleared: born again at"), "{out}");
    let entries = audit_entries(&site.state);
    let verdicts: Vec<&serde_json::Value> =
        entries[logged..].iter().map(|e| &e["verdict"]).collect();
    assert_eq!(verdicts, ["clearing", "cleared"], "{entries:?}");
    assert_eq!(entries[logged]["details"]["reason"], "INC-7: drill");
    assert_eq!(entries[logged]["details"]["before"]["nonces"], 1);
    let (code, out, _) = agent_state(&["stats", "--state", &state, "--format", "json"], &[]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&v["stats"]["nonces"], &v["stats"]["reserved"]),
        (&0.into(), &0.into()),
        "{v}"
    );

    // Served again: the order decided before the clear is refused, not decided afresh.
    a = site.serve(&[]);
    let (s, v) = a.post("/v1/decide", &[], &signed_order);
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(false)), "{v}");
    assert_eq!(codes(&v), ["state-too-new"], "{v}");
}

/// On Redis a clear acts on every agent of the fleet while they run: the agent that decided
/// an order refuses it afterwards; its next call after the clear says so and decides nothing.
#[test]
fn a_clear_on_redis_acts_on_every_running_agent_and_never_reopens_the_window() {
    let redis = Redis::start();
    let site = Site::new();
    let url = redis.url();
    let state = site.state.to_str().unwrap().to_owned();
    let a = site.serve(&["--state-url", &url]);
    let signed_order = site.sign(&site.order(90), "dispatcher-1");
    let (s, v) = a.post("/v1/decide", &[], &signed_order);
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(true)), "{v}");
    let (code, out, err) = agent_state(
        &[
            "stats",
            "--state",
            &state,
            "--state-url",
            &url,
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&v["stats"]["nonces"], &v["stats"]["reserved"]),
        (&1.into(), &1.into()),
        "{v}"
    );
    // The agent runs: a clear on Redis does not wait for it.
    let (code, _, err) = agent_state(
        &[
            "clear",
            "--state",
            &state,
            "--state-url",
            &url,
            "--reason",
            "INC-9",
            "--confirm",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    // The next call notices the clear (not decided), the one after refuses the old order.
    let (s, v) = a.post("/v1/decide", &[], &signed_order);
    assert_eq!(s, 503, "{v}");
    assert!(v.to_string().contains("an operator cleared"), "{v}");
    let (s, v) = a.post("/v1/decide", &[], &signed_order);
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(false)), "{v}");
    assert_eq!(codes(&v), ["state-too-new"], "{v}");
    let kinds: Vec<String> = audit_entries(&site.state)
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["kind"].as_str().unwrap(),
                e["verdict"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        kinds.ends_with(&[
            "agent.state-stats/read".to_string(),
            "agent.state-clear/clearing".to_string(),
            "agent.state-clear/cleared".to_string()
        ]),
        "{kinds:?}"
    );
}

/// The fleet's concurrency proof, as processes: four agents on one Redis, 10,000 orders over
/// the seven treaties sent concurrently (one treaty's at a time: every decision in flight
/// reads and reserves the same counters), each nonce to two agents at once. Each order asks
/// between 1 and 100,000 milli-GPU-hours, so a treaty stays near its daily quota for a long
/// run of decisions (small orders still fit, large ones no longer do: each of those decisions
/// races the others for the last headroom), and most orders are refused. Exactly one first
/// decision per nonce (the other answer is its repeat, the same decision); no treaty's
/// GPU-hours or concurrent jobs over its quota; the counters equal the sum of what was
/// allowed; and after every provider ACKs and completes its jobs (each ACK too sent to two
/// agents at once), the usage reconciles with the ACKs. Bounded: every request has a timeout,
/// retries are counted.
#[test]
fn four_agents_on_one_redis_decide_each_of_ten_thousand_orders_once_within_every_quota() {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const ORDERS: usize = 10_000;
    // Each order's size: spread over 1..=100,000 (the example's Rego rule caps one there).
    let gpu = |k: usize| 1 + (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) % 100_000;
    let redis = Redis::start();
    let site = Site::new();
    let url = redis.url();
    let mut agents: Vec<Agent> = (0..4)
        .map(|i| {
            let state = site.g.path(&format!("../fleet-{i}"));
            let port = free_port();
            let stderr = site.g.path(&format!("../fleet-{i}.log"));
            let child = site
                .command_at(&state, port, &["--state-url", &url, "--rate", "1000000"])
                .stderr(std::fs::File::create(&stderr).unwrap())
                .spawn()
                .unwrap();
            Agent {
                child,
                port,
                stderr,
            }
        })
        .collect();
    for a in &mut agents {
        a.ready();
    }
    std::thread::sleep(SETTLE);

    // The treaties as approved: id, a region it allows, (GPU quota, jobs), its provider's key.
    let mut treaties = Vec::new();
    for entry in std::fs::read_dir(site.g.path("treaties")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let network = t["parties"]["provider"]["network"].as_str().unwrap();
            treaties.push((
                t["treaty_id"].as_str().unwrap().to_owned(),
                t["regions"][0].as_str().unwrap().to_owned(),
                (
                    t["quotas"]["gpu_hours_per_day"].as_u64().unwrap() * 1_000,
                    t["quotas"]["concurrent_jobs"].as_u64().unwrap(),
                ),
                format!("{network}-1"),
            ));
        }
    }
    treaties.sort();
    assert_eq!(treaties.len(), 7);

    // Signed in advance (two threads), one attestation shared by all.
    let attestation = site.attestation("dispatcher-1", 9_000);
    let dispatcher = site.key("dispatcher-1");
    let now = treaty::time::now();
    let order = |k: usize| {
        // In blocks: the eight workers all decide one treaty's orders at the same time.
        let t = &treaties[k * 7 / ORDERS];
        let o = serde_json::json!({
            "spec_version": "1.0",
            "order_id": format!("fleet-{k}"),
            "treaty_id": t.0,
            "nonce": format!("{:032x}", 0xf1ee_7000_0000_0000u64 + k as u64),
            "issued_at": treaty::time::format(now),
            "not_after": plus(now, 900),
            "region": t.1,
            "gpu_milli_hours": gpu(k),
            "credits": 100,
            "attestation": attestation,
        });
        signed::sign(&serde_json::to_vec(&o).unwrap(), Kind::Order, &dispatcher).unwrap()
    };
    let signed: Vec<Vec<u8>> = std::thread::scope(|sc| {
        let odd = sc.spawn(|| {
            (0..ORDERS)
                .filter(|k| k % 2 == 1)
                .map(order)
                .collect::<Vec<_>>()
        });
        let even: Vec<_> = (0..ORDERS).filter(|k| k % 2 == 0).map(order).collect();
        let odd = odd.join().unwrap();
        (0..ORDERS)
            .map(|k| {
                if k % 2 == 0 {
                    &even[k / 2]
                } else {
                    &odd[k / 2]
                }
                .clone()
            })
            .collect()
    });

    let ports: Vec<u16> = agents.iter().map(|a| a.port).collect();
    let retries = AtomicUsize::new(0);
    // POST until an answer other than 503 (a store conflict or contention is not a decision);
    // bounded.
    let send = |port: u16, path: &str, body: &[u8]| -> (u16, serde_json::Value) {
        for _ in 0..50 {
            let (s, b) = http(port, "POST", path, &[], body);
            if s != 503 {
                return (s, parse(&b));
            }
            retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{path} at :{port} answered 503 fifty times");
    };
    // The two agents item k goes to, at once.
    let pair = |k: usize| {
        let a = k % 4;
        (ports[a], ports[(a + 1 + (k / 4) % 3) % 4])
    };
    type Reply = (u16, serde_json::Value);
    let both = |k: usize, path: &str, body: &[u8]| -> (Reply, Reply) {
        let (p1, p2) = pair(k);
        std::thread::scope(|inner| {
            let other = inner.spawn(|| send(p2, path, body));
            let first = send(p1, path, body);
            (first, other.join().unwrap())
        })
    };
    let started = Instant::now();
    let answers: Vec<(Reply, Reply)> = std::thread::scope(|sc| {
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (signed, both) = (&signed, &both);
                sc.spawn(move || {
                    (0..ORDERS)
                        .filter(|k| k % 8 == w)
                        .map(|k| (k, both(k, "/v1/decide", &signed[k])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        all.sort_by_key(|x| x.0);
        all.into_iter().map(|x| x.1).collect()
    });
    let decide_time = started.elapsed();

    let mut allowed: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (k, ((s1, v1), (s2, v2))) in answers.iter().enumerate() {
        assert_eq!((*s1, *s2), (200, 200), "order {k}: {v1} / {v2}");
        let firsts = [v1, v2].iter().filter(|v| v["repeat"] == false).count();
        assert_eq!(firsts, 1, "order {k}: one first decision: {v1} / {v2}");
        // The recorded decision: failover advice comes with the first answer only.
        let strip = |v: &serde_json::Value| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("repeat");
            v.as_object_mut().unwrap().remove("failover");
            v
        };
        assert_eq!(
            strip(v1),
            strip(v2),
            "order {k}: the repeat is the decision"
        );
        if v1["allowed"] == true {
            let t = v1["treaty_id"].as_str().unwrap().to_owned();
            allowed.entry(t).or_default().push(k);
        } else {
            let c = codes(v1);
            assert!(
                !c.is_empty()
                    && c.iter()
                        .all(|c| c == "gpu-hours-over-daily-quota"
                            || c == "concurrent-jobs-over-quota"),
                "order {k}: denied by a treaty quota only: {v1}"
            );
        }
    }
    let refused = ORDERS - allowed.values().map(Vec::len).sum::<usize>();
    assert!(refused * 3 >= ORDERS, "a third refused at least: {refused}");
    for t in &treaties {
        let mine = allowed.get(&t.0).cloned().unwrap_or_default();
        let (quota, jobs) = t.2;
        let n = mine.len() as u64;
        let held: u64 = mine.iter().map(|&k| gpu(k)).sum();
        assert!(held <= quota, "{}: {held} of {quota} milli-GPU-hours", t.0);
        assert!(n <= jobs, "{}: {n} jobs of {jobs}", t.0);
        assert!(
            held * 10 >= quota * 9 || n == jobs,
            "{}: the quota bit ({held} of {quota}, {n} jobs)",
            t.0
        );
        let (s, u) = agents[3].get(&format!("/v1/treaties/{}/usage", t.0), &[]);
        assert_eq!(s, 200, "{u}");
        assert_eq!(
            (
                u["allowed"].as_u64(),
                u["reserved"].as_u64(),
                u["gpu_milli_hours_today"].as_u64()
            ),
            (Some(n), Some(n), Some(held)),
            "{}: the counters are what was allowed: {u}",
            t.0
        );
    }

    // Every allowed order's provider accepts it, then completes it having used half what it
    // held; each message goes to two agents at once.
    let provider: BTreeMap<&str, &str> = treaties
        .iter()
        .map(|t| (t.0.as_str(), t.3.as_str()))
        .collect();
    let jobs: Vec<usize> = allowed.values().flatten().copied().collect();
    let ack = |k: usize, status: &str, used: Option<u64>| -> Vec<u8> {
        let treaty = &treaties[k * 7 / ORDERS].0;
        site.ack(&signed[k], status, used, provider[treaty.as_str()])
    };
    for (status, half) in [("accepted", false), ("completed", true)] {
        std::thread::scope(|sc| {
            for w in 0..8 {
                let (jobs, ack, both, gpu) = (&jobs, &ack, &both, &gpu);
                sc.spawn(move || {
                    for (i, &k) in jobs.iter().enumerate().filter(|(i, _)| i % 8 == w) {
                        let body = ack(k, status, half.then(|| gpu(k) / 2));
                        let (a, b) = both(k + i, "/v1/acks", &body);
                        assert_eq!((a.0, b.0), (200, 200), "{status} {k}: {} / {}", a.1, b.1);
                    }
                });
            }
        });
    }
    for t in &treaties {
        let mine = allowed.get(&t.0).cloned().unwrap_or_default();
        let n = Some(mine.len() as u64);
        let used: u64 = mine.iter().map(|&k| gpu(k) / 2).sum();
        let (s, u) = agents[0].get(&format!("/v1/treaties/{}/usage", t.0), &[]);
        assert_eq!(s, 200, "{u}");
        assert_eq!(
            (
                u["allowed"].as_u64(),
                u["acks_accepted"].as_u64(),
                u["reserved"].as_u64(),
                u["running"].as_u64(),
                u["gpu_milli_hours_today"].as_u64()
            ),
            (n, n, Some(0), Some(0), Some(used)),
            "{}: the usage reconciles with the ACKs: {u}",
            t.0
        );
    }
    eprintln!(
        "fleet: {ORDERS} orders × 2 agents decided in {:.1} s ({:.0} requests/s), {refused} refused, {} answers retried after 503",
        decide_time.as_secs_f64(),
        (2 * ORDERS) as f64 / decide_time.as_secs_f64(),
        retries.load(Ordering::Relaxed)
    );
}

/// Failover served on the example federation: AKASH's 64 concurrent jobs taken, the next order
/// is denied for capacity and names IONET (AKASH's failover, which shares us-east since the
/// treaties' v2); an order for IONET is then allowed there; the metric counts the failover.
#[test]
fn a_full_treaty_names_its_failover_and_the_target_takes_the_new_order() {
    let site = Site::new();
    let a = site.serve(&["--rate", "100000"]);
    for n in 0..64 {
        let (s, v) = a.post(
            "/v1/decide",
            &[],
            &site.sign(&site.order(500 + n), "dispatcher-1"),
        );
        assert_eq!(
            (s, &v["allowed"]),
            (200, &serde_json::json!(true)),
            "{n}: {v}"
        );
    }
    let (s, v) = a.post(
        "/v1/decide",
        &[],
        &site.sign(&site.order(600), "dispatcher-1"),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(codes(&v), ["concurrent-jobs-over-quota"], "{v}");
    assert_eq!(
        v["failover"],
        serde_json::json!({"treaty_id": "AURORA-IONET-001", "because": "capacity"}),
        "{v}"
    );
    let mut moved = site.order(601);
    moved["treaty_id"] = "AURORA-IONET-001".into();
    let (s, v) = a.post("/v1/decide", &[], &site.sign(&moved, "dispatcher-1"));
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(true)), "{v}");
    assert!(v.get("failover").is_none(), "{v}");
    let (_, b) = http(a.port, "GET", "/metrics", &[], b"");
    let text = String::from_utf8_lossy(&b);
    assert!(
        text.contains("treaty_law_failovers_total{treaty=\"AURORA-AKASH-001\"} 1"),
        "{text}"
    );
}

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The alert rules are valid, and promtool's unit tests pass: series that breach each SLO fire
/// its alert, honest ones do not. Every alert is expected to fire in some test (an alert that
/// never fires is a defect), and each runbook link names a section of docs/law.md.
#[test]
fn alert_rules_check_and_fire_on_series_that_breach_each_slo() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    for args in [
        vec!["check", "rules", "treaty-alerts.yml"],
        vec!["test", "rules", "treaty-alerts.test.yml"],
    ] {
        let o = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool (Debian's prometheus package, installed by .ci/setup)");
        assert!(
            o.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let rules = repo_file("deploy/prometheus/treaty-alerts.yml");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    // Each `- eval_time:` case of the tests: its alert name, and whether it expects alerts.
    let tests = repo_file("deploy/prometheus/treaty-alerts.test.yml");
    let mut fired = std::collections::BTreeSet::new();
    for case in tests.split("- eval_time:").skip(1) {
        let name = case
            .lines()
            .find_map(|l| l.trim().strip_prefix("alertname: "))
            .unwrap();
        if !case.contains("exp_alerts: []") {
            fired.insert(name.to_owned());
        }
    }
    let law = repo_file("docs/law.md");
    for a in &alerts {
        assert!(fired.contains(*a), "{a}: no test fires it");
        let anchor = format!("docs/law.md#runbook-{}", a.to_lowercase());
        assert!(rules.contains(&anchor), "{a}: no runbook link {anchor}");
        assert!(
            law.contains(&format!("### Runbook: {a}\n")),
            "{a}: docs/law.md has no runbook section"
        );
    }
}

/// Every metric the dashboard and the alert rules query is on a live agent's /metrics (after
/// an order is decided and ACKed, so the histograms and the measured SLOs have values): a
/// renamed metric cannot leave a panel or an alert silently empty.
#[test]
fn the_dashboard_and_the_alerts_query_only_metrics_a_live_agent_serves() {
    let site = Site::new();
    let key = site.g.path("demo-keys/agent-1.key");
    let a = site.serve(&["--receipt-key", key.to_str().unwrap()]);
    let signed_order = site.sign(&site.order(700), "dispatcher-1");
    let (s, v) = a.post("/v1/decide", &[], &signed_order);
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(true)), "{v}");
    let (s, v) = a.post(
        "/v1/acks",
        &[],
        &site.ack(&signed_order, "accepted", None, "akash-1"),
    );
    assert_eq!(s, 200, "{v}");
    let mut elsewhere = site.order(701);
    elsewhere["region"] = "ap-northeast".into();
    let (s, v) = a.post("/v1/decide", &[], &site.sign(&elsewhere, "dispatcher-1"));
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(false)), "{v}");
    let (_, b) = http(a.port, "GET", "/metrics", &[], b"");
    let served = String::from_utf8_lossy(&b).into_owned();
    let names: std::collections::BTreeSet<&str> = served
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let dashboard: serde_json::Value =
        serde_json::from_str(&repo_file("deploy/grafana/treaty-agent.json")).unwrap();
    let mut queries: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    queries.push(repo_file("deploy/prometheus/treaty-alerts.yml"));
    let mut used = std::collections::BTreeSet::new();
    for q in &queries {
        let mut rest = q.as_str();
        while let Some(i) = rest.find("treaty_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            used.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    // Label values and ids that merely start with the prefix are not metrics.
    used.retain(|m| m.starts_with("treaty_law_") || m.starts_with("treaty_agent_"));
    assert!(used.len() >= 12, "{used:?}");
    for m in &used {
        assert!(
            names.contains(m.as_str()),
            "{m} is queried but not served:\n{served}"
        );
    }
}

/// Provenance receipts (docs/law.md § Receipts): an agent with its `agent` role key records
/// each decision (denials too) and each ACK it applied; `treaty audit prove --order` shows
/// the order decided, under which approved state, and what the provider answered, under a
/// checkpoint that agent signed. A receipt answered just before a `kill -9` is logged after the
/// restart (the write-ahead file); an order no agent decided proves nothing (exit 1).
#[test]
fn receipts_prove_each_decision_and_the_providers_answers_and_survive_a_kill() {
    let site = Site::new();
    let key = site.g.path("demo-keys/agent-1.key");
    let key = key.to_str().unwrap();
    let mut a = site.serve(&["--receipt-key", key]);
    let mirror = site.state.join("mirror.git");
    let prove = |order: &str| {
        let o = Command::new(assert_cmd::cargo::cargo_bin("treaty"))
            .args(["audit", "prove", "--order", order, "--repo"])
            .arg(&mirror)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap_or_default(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let until_proven = |order: &str, acks: usize| {
        for _ in 0..100 {
            let (code, v, _) = prove(order);
            if code == 0 && v["logs"][0]["provider"].as_array().map_or(0, Vec::len) >= acks {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{order}: never proven: {:?}", prove(order));
    };
    let signed_order = site.sign(&site.order(800), "dispatcher-1");
    let (s, v) = a.post("/v1/decide", &[], &signed_order);
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(true)), "{v}");
    let commit = v["commit"].clone();
    for (status, used) in [("accepted", None), ("completed", Some(400))] {
        let (s, v) = a.post(
            "/v1/acks",
            &[],
            &site.ack(&signed_order, status, used, "akash-1"),
        );
        assert_eq!(s, 200, "{v}");
    }
    let mut far = site.order(801);
    far["region"] = "ap-northeast".into();
    let (s, v) = a.post("/v1/decide", &[], &site.sign(&far, "dispatcher-1"));
    assert_eq!((s, &v["allowed"]), (200, &serde_json::json!(false)), "{v}");

    let p = until_proven("ord-800", 2);
    let log = &p["logs"][0];
    assert_eq!(log["agent"], "agent-1", "{p}");
    assert_eq!(
        log["checkpoint"]["signed_by"],
        serde_json::json!(["agent-1"])
    );
    let d = &log["decision"]["receipt"];
    assert_eq!(
        (&d["allowed"], &d["state"]["commit"]),
        (&true.into(), &commit),
        "{p}"
    );
    assert!(d.get("requester").is_none(), "ids and digests only: {d}");
    let statuses: Vec<&str> = log["provider"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["receipt"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "completed"]);
    assert_eq!(log["provider"][1]["receipt"]["used_gpu_milli_hours"], 400);
    // The denial is a decision with a receipt too.
    let p = until_proven("ord-801", 0);
    let d = &p["logs"][0]["decision"]["receipt"];
    assert_eq!(d["allowed"], false, "{p}");
    assert_eq!(d["codes"][0], "region-not-allowed", "{p}");
    // The completed job's receipt is under a signed checkpoint: coverage 1, no lag.
    let (_, b) = http(a.port, "GET", "/metrics", &[], b"");
    let text = String::from_utf8_lossy(&b).into_owned();
    assert!(
        text.contains(
            "treaty_law_slo_measured{treaty=\"AURORA-AKASH-001\",slo=\"provenance_coverage_min\"} 1\n"
        ),
        "{text}"
    );
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse::<u64>().ok())
    };
    assert_eq!(gauge("treaty_law_receipts_written"), Some(4), "{text}");
    assert_eq!(
        gauge("treaty_law_receipts_checkpointed"),
        gauge("treaty_law_receipts_written")
    );
    // A lookup answers the decision too: recorded once, however often it is polled.
    for _ in 0..3 {
        assert_eq!(a.get("/v1/orders/ord-801", &[]).0, 200);
    }
    let (_, b) = http(a.port, "GET", "/metrics", &[], b"");
    let text = String::from_utf8_lossy(&b).into_owned();
    assert!(text.contains("treaty_law_receipts_written 5\n"), "{text}");
    // Nothing decided: nothing proven.
    let (code, v, err) = prove("ord-nobody");
    assert_eq!(code, 1, "{v} {err}");

    // Answered, then killed before the next batch: logged after the restart.
    let late = site.sign(&site.order(802), "dispatcher-1");
    let (s, v) = a.post("/v1/decide", &[], &late);
    assert_eq!(s, 200, "{v}");
    let _ = a.child.kill();
    let _ = a.child.wait();
    a = site.serve(&["--receipt-key", key]);
    let p = until_proven("ord-802", 0);
    assert_eq!(p["logs"][0]["decision"]["receipt"]["allowed"], true, "{p}");
    drop(a);
}

/// With `--receipt-tsa`, each receipt checkpoint carries an RFC 3161 token over its bytes (a
/// real `openssl ts` authority on loopback), and `audit prove --order` reports its time once
/// it verifies against the governance's approved TSA roots.
#[test]
fn receipt_checkpoints_carry_a_timestamp_the_governed_roots_verify() {
    let g = Gov::demo();
    let ca = crate::tsa::Ca::new(&g.path("../cas"), "tsa-r", 365);
    let tsa = crate::tsa::Tsa::start(&ca, crate::tsa::Mode::Honest);
    g.write(
        "keys/tsa-roots.pem",
        format!(
            "# Trusted RFC 3161 authority roots (treaty governed file)\n# spec_version: 1.0\n# version: 1\n{}",
            ca.root_pem()
        ),
    );
    g.sign("keys/tsa-roots.pem", &["root-1", "root-2"]);
    g.commit("tsa roots");
    for (what, args) in [
        ("snapshot", vec!["snapshot"]),
        ("heartbeat", vec!["heartbeat"]),
    ] {
        g.treaty()
            .args(&args)
            .args(["--key", "demo-keys/ci-1.key"])
            .assert()
            .success();
        g.commit(what);
    }
    let site = Site::of(g);
    let key = site.g.path("demo-keys/agent-1.key");
    let a = site.serve(&[
        "--receipt-key",
        key.to_str().unwrap(),
        "--receipt-tsa",
        &tsa.url,
    ]);
    let (s, v) = a.post(
        "/v1/decide",
        &[],
        &site.sign(&site.order(900), "dispatcher-1"),
    );
    assert_eq!(s, 200, "{v}");
    let mirror = site.state.join("mirror.git");
    for _ in 0..100 {
        let o = Command::new(assert_cmd::cargo::cargo_bin("treaty"))
            .args(["audit", "prove", "--order", "ord-900", "--repo"])
            .arg(&mirror)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if o.status.success() {
            let t = &v["logs"][0]["timestamp"];
            assert!(
                t["time"].as_str().is_some_and(|t| t.starts_with("20")),
                "{v}"
            );
            assert!(
                t["tsa"].as_str().unwrap_or_default().contains("tsa-r TSA"),
                "{v}"
            );
            assert!(*tsa.requests.lock().unwrap() >= 1);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("never proven: {}", a.log());
}

/// A receipt key the root's `agent` role does not vouch for (here the automation group's CI
/// key): no law is put in force — the agent decides nothing and says why — rather than keep
/// receipt logs no proof would accept.
#[test]
fn a_receipt_key_outside_the_agent_role_puts_no_law_in_force() {
    let site = Site::new();
    let key = site.g.path("demo-keys/ci-1.key");
    let a = site.spawn_with(&["--receipt-key", key.to_str().unwrap()], &[]);
    let mut said = false;
    for _ in 0..100 {
        if a.log().contains("is not a key of the root's `agent` role") {
            said = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(said, "{}", a.log());
    assert_eq!(a.get("/readyz", &[]).0, 503);
    let (s, v) = a.post(
        "/v1/decide",
        &[],
        &site.sign(&site.order(950), "dispatcher-1"),
    );
    assert_eq!(s, 503, "{v}");
}

/// A treaty that lists itself among its failover treaties is refused as content, with its
/// place (`treaty validate` on the work tree); the honest list passes.
#[test]
fn a_treaty_listing_itself_as_its_failover_is_a_finding() {
    let g = Gov::demo();
    let rel = "treaties/AURORA-AKASH-001.json";
    let honest = g.treaty().args(["validate", rel]).output().unwrap();
    assert_eq!(honest.status.code(), Some(0), "{honest:?}");
    let mut t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(g.path(rel)).unwrap()).unwrap();
    t["failover"] = serde_json::json!(["AURORA-IONET-001", AKASH_ID]);
    g.write_json(rel, &t);
    let o = g.treaty().args(["validate", rel]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("treaty-failover-self"), "{out}");
    assert!(out.contains("/failover/1"), "{out}");
}

/// The test build has the war game's simulated clock (`--all-features`): this is the positive
/// control of `.ci/no-sim-clock`, whose behaviour probe (a clock seventy years ahead, read by
/// `treaty verify`) must move the time of a binary that has the clock — so a release binary
/// that judges at today's date under the same variable lacks it. A malformed clock stops the
/// agent (exit 2, naming the variable), never falls back to the real one in silence.
#[cfg(feature = "sim-clock")]
#[test]
fn the_simulated_clock_moves_the_test_builds_time_and_a_malformed_one_stops_the_agent() {
    let g = Gov::demo();
    let anchor_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let clock = format!("origin=4102444800,anchor_ms={anchor_ms},rate=1");
    let judged = |env: Option<&str>| -> String {
        let mut c = g.treaty();
        c.args(["verify", "--format", "json"]);
        match env {
            Some(v) => c.env("TREATY_SIM_CLOCK", v),
            None => c.env_remove("TREATY_SIM_CLOCK"),
        };
        let o = c.output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["judged_at"].as_str().unwrap().to_owned()
    };
    assert!(
        judged(Some(&clock)).starts_with("2100-01-01T00:00"),
        "{}",
        judged(Some(&clock))
    );
    let year = treaty::time::format(treaty::time::now());
    assert_eq!(judged(None)[..4], year[..4]);
    for bad in [
        "origin=4102444800",
        "origin=4102444800,anchor_ms=1,rate=0",
        // Behind the real clock: Redis would forget nonces early.
        "origin=1000,anchor_ms=999999999999,rate=2",
    ] {
        let site = Site::of(Gov::demo());
        let o = site
            .command(free_port(), &[])
            .env("TREATY_SIM_CLOCK", bad)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("TREATY_SIM_CLOCK"), "{bad}: {err}");
    }
}
