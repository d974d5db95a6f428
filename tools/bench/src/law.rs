//! The law benchmark (`treaty-bench law --work DIR`): decisions on pre-signed, distinct orders
//! across the seven treaties of a fresh demo federation (mostly allowed, some denied, some
//! replayed), in process against the durable store, beside two floors measured in the same
//! run: signature verification plus one durable store commit per order, and the same
//! constraints written in Rego evaluated by `regorus` alone. Over HTTP, `treaty-agent --serve`
//! as a process driven by `wrk` (when installed) at several concurrency levels. It measures; it
//! never asserts a speed.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use treaty::crypto::SigningKey;
use treaty::law::message::Kind;
use treaty::law::signed;

/// Latency figures of one series, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub n: usize,
    pub per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

/// The `q` quantile (nearest rank) of ascending `sorted`; NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN)
}

impl Latency {
    fn of(mut us: Vec<f64>, wall_s: f64) -> Latency {
        us.sort_by(f64::total_cmp);
        let at = |q: f64| percentile(&us, q);
        Latency {
            n: us.len(),
            per_second: us.len() as f64 / wall_s,
            p50_us: at(0.5),
            p99_us: at(0.99),
            max_us: us.last().copied().unwrap_or(f64::NAN),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0}/s, p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({} orders)",
            self.per_second, self.p50_us, self.p99_us, self.max_us, self.n
        )
    }
}

/// One HTTP load level.
#[derive(Debug, Clone, Serialize)]
pub struct HttpLevel {
    pub connections: usize,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LawBench {
    pub orders: usize,
    /// The mix as the engine decided it: allowed, denied, refused (replays).
    pub allowed: usize,
    pub denied: usize,
    pub refused: usize,
    /// In process, one thread, the durable store (fdatasync per decision).
    pub engine: Latency,
    /// Floor: the order's signature verification, its attestation's the first time those bytes
    /// are seen (as the engine does), and one durable append (512 bytes, fdatasync), per order.
    pub floor_verify_commit: Latency,
    /// Floor: the same signature verifications alone.
    pub floor_verify: Latency,
    /// The same constraints in Rego, evaluated by regorus alone (no signature, no store).
    pub rego_alone: Latency,
    /// `engine / floor_verify_commit` medians (p50).
    pub ratio_to_floor: f64,
    /// Over HTTP (`wrk`, closed loop), by concurrency; empty without `wrk`.
    pub http: Vec<HttpLevel>,
    /// Over HTTP at about half the best closed-loop rate; none without `wrk`.
    pub http_half: Option<HalfLoad>,
    pub http_note: String,
    /// The mix counted by the server over HTTP (`treaty_law_decisions_total`, refused).
    pub http_server_mix: Option<String>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn key(dir: &Path, id: &str) -> Result<SigningKey, String> {
    SigningKey::load(&dir.join(format!("demo-keys/{id}.key")), || {
        Ok(String::new())
    })
    .map_err(err)
}

/// Each treaty of the law with a region it allows.
fn targets(law: &treaty::law::Law) -> Vec<(String, String)> {
    law.treaties
        .values()
        .filter_map(|t| Some((t.id.clone(), t.regions.iter().next()?.clone())))
        .collect()
}

/// `n` distinct signed orders issued at `at`: every tenth asks a region no treaty allows
/// (denied), every twentieth re-uses an earlier nonce in another message (replayed); the rest
/// are honest.
fn orders(
    dir: &Path,
    n: usize,
    at: treaty::time::Instant,
    targets: &[(String, String)],
) -> Result<Vec<Vec<u8>>, String> {
    if targets.is_empty() {
        return Err("no treaty with a region".into());
    }
    let dispatcher = key(dir, "dispatcher-1")?;
    let rep = key(dir, "reputation-1")?;
    let plus = |s: i64| {
        treaty::time::Instant::from_unix(at.unix() + s)
            .map(treaty::time::format)
            .unwrap_or_default()
    };
    let att = serde_json::json!({
        "spec_version": "1.0", "subject": "dispatcher-1", "score_bp": 9_500,
        "issued_at": plus(0), "expires": plus(86_000),
    });
    let att_env: serde_json::Value = treaty::json::parse_value(
        &signed::sign(
            &serde_json::to_vec(&att).map_err(err)?,
            Kind::Attestation,
            &rep,
        )
        .map_err(err)?,
    )
    .map_err(err)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (treaty, region) = &targets[i % targets.len()];
        let nonce = if i % 20 == 19 { i - 10 } else { i };
        let o = serde_json::json!({
            "spec_version": "1.0",
            "order_id": format!("bench-{i}"),
            "treaty_id": treaty,
            "nonce": format!("{nonce:032x}"),
            "issued_at": plus(0),
            "not_after": plus(3_000),
            "region": if i % 10 == 9 { "mars-1" } else { region.as_str() },
            "gpu_milli_hours": 10,
            "credits": 1,
            "attestation": att_env,
        });
        out.push(
            signed::sign(
                &serde_json::to_vec(&o).map_err(err)?,
                Kind::Order,
                &dispatcher,
            )
            .map_err(err)?,
        );
    }
    Ok(out)
}

/// The constraints of the engine's decision, as Rego over the same documents.
const REGO_FLOOR: &str = r#"# spec_version: 1.0
# version: 1
package treaty

deny contains {"code": "rego-treaty-inactive", "message": "inactive"} if input.treaty.status != "active"
deny contains {"code": "rego-region", "message": "region"} if {
	not input.order.region in input.treaty.regions
}
deny contains {"code": "rego-policy-region", "message": "region"} if {
	some p in input.policies
	not input.order.region in p.constraints.region.allowed
}
deny contains {"code": "rego-allowlist", "message": "allowlist"} if {
	some p in input.policies
	not input.order.treaty_id in p.allowlist
}
deny contains {"code": "rego-credits", "message": "credits"} if input.order.credits > input.treaty.quotas.credits_per_order
deny contains {"code": "rego-amount", "message": "amount"} if {
	some p in input.policies
	input.order.credits > p.max_amount_per_order
}
deny contains {"code": "rego-reputation", "message": "reputation"} if {
	input.attestation.score_bp < input.treaty.min_reputation * 10000
}
deny contains {"code": "rego-quota", "message": "quota"} if {
	input.usage.gpu_milli_hours + input.order.gpu_milli_hours > input.treaty.quotas.gpu_hours_per_day * 1000
}
"#;

pub fn run(work: &Path, n: usize, wrk_seconds: u64) -> Result<LawBench, String> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).map_err(err)?;
    let gov = work.join("gov");
    treaty::scaffold::demo(&gov, true).map_err(err)?;
    let repo = treaty::source::Repo::discover(&gov).map_err(err)?;
    let head = repo.resolve("HEAD").map_err(err)?;
    let tree = repo.tree_at(head).map_err(err)?;
    let now = treaty::time::now();
    let (trust, _) = treaty::trust::load(&tree, &treaty::trust::Anchor::Repository, now);
    let trust = trust.ok_or("the demo federation has no usable root")?;
    let law = treaty::law::Law::from_tree(
        &tree,
        treaty::law::Provenance {
            commit: head.to_string(),
            root_version: trust.root.version,
            snapshot_version: None,
        },
    )
    .map_err(err)?;
    let signers = signed::Signers::from_trust(&trust);
    // A store born well before the orders (so none is state-too-new).
    let birth = treaty::time::Instant::from_unix(now.unix() - 3_600).ok_or("time")?;
    let issued = treaty::time::Instant::from_unix(now.unix() - 60).ok_or("time")?;
    let targets = targets(&law);
    let signed_orders = orders(&gov, n, issued, &targets)?;

    // In process: the engine on the durable store.
    let state = work.join("law-state");
    std::fs::create_dir_all(&state).map_err(err)?;
    let store = treaty::law::journal::JournalStore::open(&state, birth).map_err(err)?;
    let engine = treaty::law::Engine {
        law: law.clone(),
        signers: signers.clone(),
        // Reservations expire after a second (no provider ACKs here), so concurrency quotas
        // free up as they would with providers answering.
        bounds: treaty::law::decide::Bounds {
            reservation_ttl_seconds: 1,
            ..treaty::law::decide::Bounds::default()
        },
        store,
        fresh_until: treaty::time::Instant::MAX,
        attestations: Default::default(),
        health: Default::default(),
        receipts: None,
    };
    let (mut allowed, mut denied, mut refused) = (0, 0, 0);
    let mut us = Vec::with_capacity(n);
    let wall = Instant::now();
    for o in &signed_orders {
        let t0 = Instant::now();
        let a = engine.decide(o, treaty::time::now()).map_err(err)?;
        us.push(t0.elapsed().as_secs_f64() * 1e6);
        match a {
            treaty::law::Answer::Decided { decision, .. } if decision.allowed => allowed += 1,
            treaty::law::Answer::Decided { .. } => denied += 1,
            _ => refused += 1,
        }
    }
    let engine_lat = Latency::of(us, wall.elapsed().as_secs_f64());

    // Floors: the signature verifications every decision makes (the order's and its embedded
    // attestation's), alone and with one durable append.
    let attestations: Vec<Vec<u8>> = signed_orders
        .iter()
        .map(|o| {
            let env = signed::open(o, Kind::Order).map_err(err)?;
            let v = treaty::json::parse_value(&env.payload).map_err(err)?;
            serde_json::to_vec(&v["attestation"]).map_err(err)
        })
        .collect::<Result<_, String>>()?;
    // Like the engine, the floor checks each distinct attestation once (its own cache, the same
    // key: the attestation's bytes), and every order's signature every time.
    let seen = std::cell::RefCell::new(std::collections::HashSet::new());
    let verify_both = |i: usize| -> Result<(), String> {
        signed::verify(&signed_orders[i], Kind::Order, &signers.orders).map_err(err)?;
        if seen.borrow_mut().insert(attestations[i].clone()) {
            signed::verify(&attestations[i], Kind::Attestation, &signers.reputation)
                .map_err(err)?;
        }
        Ok(())
    };
    let mut us = Vec::with_capacity(n);
    let wall = Instant::now();
    for i in 0..n {
        let t0 = Instant::now();
        verify_both(i)?;
        us.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let floor_verify = Latency::of(us, wall.elapsed().as_secs_f64());
    seen.borrow_mut().clear();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(work.join("floor-journal"))
        .map_err(err)?;
    let mut us = Vec::with_capacity(n);
    let wall = Instant::now();
    for (i, o) in signed_orders.iter().enumerate() {
        let t0 = Instant::now();
        verify_both(i)?;
        // A decision record is about a tenth of the envelope; the floor writes 512 bytes.
        f.write_all(&o[..o.len().min(512)]).map_err(err)?;
        f.sync_data().map_err(err)?;
        us.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let floor = Latency::of(us, wall.elapsed().as_secs_f64());

    // Rego alone: the same constraints, the same documents, no signature, no store.
    let rules = treaty::law::rego::Rules::compile(&[("bench.rego".into(), REGO_FLOOR.into())])
        .map_err(err)?;
    let inputs: Vec<String> = signed_orders
        .iter()
        .map(|o| {
            let env = signed::open(o, Kind::Order).map_err(err)?;
            let order = treaty::json::parse_value(&env.payload).map_err(err)?;
            let t = order["treaty_id"].as_str().unwrap_or_default().to_owned();
            Ok(serde_json::json!({
                "order": order,
                "treaty": law.treaty_docs.get(&t),
                "policies": law.policy_docs,
                "attestation": {"score_bp": 9500},
                "usage": {"gpu_milli_hours": 0},
            })
            .to_string())
        })
        .collect::<Result<_, String>>()?;
    let mut us = Vec::with_capacity(n);
    let wall = Instant::now();
    for i in &inputs {
        let t0 = Instant::now();
        rules
            .deny(i, std::time::Duration::from_secs(1))
            .map_err(err)?;
        us.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let rego_alone = Latency::of(us, wall.elapsed().as_secs_f64());

    let (http, http_half, http_note, http_server_mix) = http(work, &gov, n, wrk_seconds, &targets)?;
    Ok(LawBench {
        orders: n,
        allowed,
        denied,
        refused,
        ratio_to_floor: engine_lat.p50_us / floor.p50_us,
        engine: engine_lat,
        floor_verify_commit: floor,
        floor_verify,
        rego_alone,
        http,
        http_half,
        http_note,
        http_server_mix,
    })
}

fn binary(name: &str) -> PathBuf {
    // treaty-agent sits beside treaty-bench in the same target directory.
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

const WRK_LUA: &str = r#"-- Sends the pre-signed orders of one slice of the file, one per request, in turn; with a
-- think time, each connection waits after an answer before its next order, a time drawn
-- uniformly from 0 to twice the mean, so the connections do not fall into step (a fixed
-- time makes every connection send at once, in bursts).
local bodies = {}
local i = 0
local think = 0
function init(args)
  local first, count = tonumber(args[2]), tonumber(args[3])
  local n = 0
  for line in io.lines(args[1]) do
    if n >= first and n < first + count then bodies[#bodies + 1] = line end
    n = n + 1
  end
  think = tonumber(args[4] or "0")
end
function request()
  i = i + 1
  return wrk.format("POST", "/v1/decide", {["Content-Type"] = "application/json"}, bodies[(i % #bodies) + 1])
end
function delay()
  if think == 0 then return 0 end
  return math.random(0, 2 * think)
end
"#;

type HttpResult = (Vec<HttpLevel>, Option<HalfLoad>, String, Option<String>);

/// The closed-loop levels' connection counts.
const LEVELS: [usize; 4] = [1, 2, 4, 8];
/// Runs at the fixed half load (the median is reported, with min and max).
const HALF_RUNS: usize = 5;

/// Latency at about half the saturation throughput: `runs` wrk runs with a think time, each
/// on its own fresh orders.
#[derive(Debug, Clone, Serialize)]
pub struct HalfLoad {
    /// Half the best closed-loop rate.
    pub target_per_second: f64,
    pub connections: usize,
    pub think_ms: u64,
    pub runs: Vec<HttpLevel>,
    pub achieved_per_second_median: f64,
    pub p50_ms_median: f64,
    pub p99_ms_median: f64,
    pub p99_ms_min: f64,
    pub p99_ms_max: f64,
    pub max_ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `treaty-agent --serve` as a process on the demo federation, driven by `wrk`: first closed
/// loop at 1, 2, 4 and 8 connections (each connection waits for its answer; the best rate is
/// the saturation throughput), then [`HALF_RUNS`] runs at about half of it (connections with a
/// think time drawn uniformly around the mean, so they do not send in step: closed loop, not
/// open-loop arrivals). Every run has its own slice of `n`
/// distinct orders; a run longer than its slice cycles back and its repeats are answered from
/// the record (the server's counts show how many). wrk shares the two cores with the agent.
fn http(
    work: &Path,
    gov: &Path,
    n: usize,
    seconds: u64,
    targets: &[(String, String)],
) -> Result<HttpResult, String> {
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        return Ok((
            Vec::new(),
            None,
            "wrk is not installed: no HTTP figures".into(),
            None,
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(err)?
        .port();
    let mut agent = std::process::Command::new(binary("treaty-agent"))
        .args([
            "--interval",
            "600s",
            "--skew",
            "1s",
            "--log-level",
            "warn",
            "--serve",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--remote")
        .arg(gov)
        .arg("--state")
        .arg(work.join("agent-state"))
        .arg("--spool")
        .arg(work.join("spool"))
        .args(["--rate", "1000000", "--reservation-ttl", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("treaty-agent: {e}"))?;
    let ready = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::process::Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/readyz")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ready {
        let _ = agent.kill();
        return Err("treaty-agent --serve never became ready".into());
    }
    // Orders issued after the agent's store began plus its skew.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let issued = treaty::time::now();
    let slices = LEVELS.len() + HALF_RUNS;
    let bodies = orders(gov, n * slices, issued, targets)?;
    let file = work.join("orders.jsonl");
    let mut text = Vec::new();
    for b in &bodies {
        // One envelope per line: compact JSON (the signer writes it pretty).
        let v = treaty::json::parse_value(b).map_err(err)?;
        text.extend_from_slice(&serde_json::to_vec(&v).map_err(err)?);
        text.push(b'\n');
    }
    std::fs::write(&file, text).map_err(err)?;
    let lua = work.join("orders.lua");
    std::fs::write(&lua, WRK_LUA).map_err(err)?;
    let run = |slice: usize, connections: usize, think_ms: u64| -> Result<HttpLevel, String> {
        let out = std::process::Command::new("wrk")
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-d{seconds}s"),
                "--latency",
                "-s",
            ])
            .arg(&lua)
            .arg(format!("http://127.0.0.1:{port}/v1/decide"))
            .arg("--")
            .arg(&file)
            .arg((slice * n).to_string())
            .arg(n.to_string())
            .arg(think_ms.to_string())
            .output()
            .map_err(err)?;
        Ok(parse_wrk(
            &String::from_utf8_lossy(&out.stdout),
            connections,
        ))
    };
    let mut levels = Vec::new();
    for (k, c) in LEVELS.into_iter().enumerate() {
        levels.push(run(k, c, 0)?);
    }
    let saturation = levels
        .iter()
        .map(|l| l.requests_per_second)
        .filter(|r| r.is_finite())
        .fold(0.0, f64::max);
    let half = if saturation > 0.0 {
        // About 10 ms of think time per connection: wrk's delay is in whole milliseconds.
        let target = saturation / 2.0;
        let connections = ((target / 100.0).round() as usize).clamp(1, 64);
        let think_ms = ((connections as f64 * 1_000.0 / target).round() as u64).max(1);
        let runs = (0..HALF_RUNS)
            .map(|r| run(LEVELS.len() + r, connections, think_ms))
            .collect::<Result<Vec<_>, String>>()?;
        let of = |f: fn(&HttpLevel) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
        let p99 = of(|l| l.p99_ms);
        Some(HalfLoad {
            target_per_second: target,
            connections,
            think_ms,
            achieved_per_second_median: median(of(|l| l.requests_per_second)),
            p50_ms_median: median(of(|l| l.p50_ms)),
            p99_ms_median: median(p99.clone()),
            p99_ms_min: p99.iter().copied().fold(f64::INFINITY, f64::min),
            p99_ms_max: p99.iter().copied().fold(0.0, f64::max),
            max_ms: of(|l| l.max_ms).into_iter().fold(0.0, f64::max),
            runs,
        })
    } else {
        None
    };
    let mix = std::process::Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .ok()
        .map(|o| {
            let m = String::from_utf8_lossy(&o.stdout);
            let sum = |prefix: &str| -> u64 {
                m.lines()
                    .filter(|l| l.starts_with(prefix))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                    .sum()
            };
            format!(
                "allowed {}, denied {}, refused {} (the rest of the requests were resubmissions answered from the record)",
                sum("treaty_law_decisions_total{") - denied_of(&m),
                denied_of(&m),
                sum("treaty_law_refused_total{")
            )
        });
    let _ = agent.kill();
    let _ = agent.wait();
    Ok((
        levels,
        half,
        format!("wrk -t1, {seconds} s per run, on the same two cores as the agent; each run has its own {n} distinct orders and cycles back to them when it sends more (those repeats are answered from the record)"),
        mix,
    ))
}

fn denied_of(m: &str) -> u64 {
    m.lines()
        .filter(|l| {
            l.starts_with("treaty_law_decisions_total{") && l.contains("outcome=\"denied\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Reads `wrk --latency`'s requests/s and percentiles (in ms).
fn parse_wrk(text: &str, connections: usize) -> HttpLevel {
    let ms = |v: &str| -> f64 {
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
        let x: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => x / 1e3,
            "ms" => x,
            "s" => x * 1e3,
            "m" => x * 60e3,
            _ => f64::NAN,
        }
    };
    let mut l = HttpLevel {
        connections,
        requests_per_second: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        max_ms: f64::NAN,
    };
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["Requests/sec:", v] => l.requests_per_second = v.parse().unwrap_or(f64::NAN),
            ["50%", v] => l.p50_ms = ms(v),
            ["99%", v] => l.p99_ms = ms(v),
            ["Latency", _avg, _stdev, max, ..] => l.max_ms = ms(max),
            _ => {}
        }
    }
    l
}
