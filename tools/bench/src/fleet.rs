//! The war game (`treaty-bench fleet`, docs/law.md § The war game): a fleet of served agents on
//! one Redis, simulated providers for the demo federation's seven networks, and a day of
//! orders compressed into minutes on a simulated clock, through scripted events — a provider
//! outage, a demand surge, an agent killed and restarted, Redis restarted, a treaty revoked by
//! an approved commit the agents pull. It reports, per phase, what each event did to the
//! decisions/s, the latency, the fill rate, failovers, replays refused and receipts.
//!
//! Everything runs on loopback and is bounded: the agents (`treaty-agent-sim`, the agent's own
//! source built with the `sim-clock` feature, beside this binary), `redis-server`, the load
//! generator's and the providers' threads. The simulated clock (`treaty::time::sim`) reaches
//! the agents through `TREATY_SIM_CLOCK`; this process computes the same instants from the
//! same definition, so its orders, ACKs, heartbeats and the revocation are all on that clock.
//! Random choices come from a seeded generator: the same seed plans the same day.
//!
//! It measures; it never asserts a speed. Each figure is from this run, on this machine, with
//! the load generator, the providers, four agents and Redis sharing its cores.

use serde::Serialize;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use treaty::crypto::SigningKey;
use treaty::law::message::Kind;
use treaty::law::signed;
use treaty::time::sim::SimClock;

/// How long an order is valid, in simulated seconds: 15 minutes, and at least 3 real seconds
/// (a client's retries of a 503 take real time, however fast the day runs).
fn validity(rate: f64) -> f64 {
    (3.0 * rate).max(900.0)
}

/// How long a reservation waits for the provider's ACK, in simulated seconds: the agent's
/// default 5 minutes, and at least 1.5 real seconds (the provider's latency and its retries
/// are real time: at a fast rate, 5 simulated minutes would expire honest answers in flight).
fn reservation_ttl(rate: f64) -> f64 {
    (1.5 * rate).max(300.0).ceil()
}

/// Real seconds from the simulated clock's start to the day's: setting up the federation,
/// Redis and the agents must fit in them.
const SETUP_S: i64 = 30;

/// A simulated day, in seconds.
const DAY: f64 = 86_400.0;
/// The most orders one run plans.
pub const MAX_ORDERS: usize = 500_000;
/// The most agents one run starts.
pub const MAX_AGENTS: usize = 8;
/// Load generator threads (each waits for its order's instant, signs it, sends it).
const SENDERS: usize = 16;
/// Provider threads (each answers due ACKs).
const PROVIDERS: usize = 3;
/// How long one HTTP request may take before it counts as unanswered.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries of an answer 503 (the store cannot answer), as a client would, 50 ms apart.
const RETRIES_503: usize = 6;

/// What the war game runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub work: PathBuf,
    pub agents: usize,
    /// Simulated seconds per real second (288: a day in five minutes).
    pub rate: u32,
    /// Orders over the day (first submissions; failovers, replays and repeats come on top).
    pub orders: usize,
    /// A provider's mean time to answer an order, in real milliseconds.
    pub ack_latency_ms: u64,
    /// The share of orders a healthy provider rejects.
    pub ack_failure: f64,
    pub seed: u64,
}

/// One scripted event, at a simulated hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A provider stops answering (its reservations expire unanswered).
    ProviderOutage,
    /// The provider answers again.
    ProviderBack,
    /// Orders arrive at several times the rate, larger, on one treaty.
    SurgeStart,
    SurgeEnd,
    /// `kill -9` of one agent; the load balancer sends to the others.
    AgentKilled,
    /// The same agent, restarted on its state directory and port.
    AgentRestarted,
    /// Redis killed and started again empty (no persistence).
    RedisRestarted,
    /// A treaty set `revoked` by an approved commit pushed to the remote the agents pull.
    TreatyRevoked,
}

/// The day's script: (simulated hour, event).
/// The events fall in the day's busy hours: a provider's breaker needs 20 answers in an hour
/// to judge, which the night's orders may not give a small run.
pub const SCRIPT: [(f64, Event); 8] = [
    (9.0, Event::ProviderOutage),
    (11.0, Event::ProviderBack),
    (12.0, Event::SurgeStart),
    (13.0, Event::SurgeEnd),
    (15.0, Event::AgentKilled),
    (15.5, Event::AgentRestarted),
    (18.0, Event::RedisRestarted),
    (21.0, Event::TreatyRevoked),
];
/// The network whose provider goes down.
const OUTAGE: &str = "ionet";
/// The treaty the surge hits (its failover takes the overflow).
const SURGED: &str = "AURORA-SALAD-001";
/// The treaty revoked.
const REVOKED: &str = "AURORA-FLUX-001";
/// How many times the base rate the surge sends.
const SURGE_FACTOR: f64 = 3.0;

/// Latency figures of one phase's requests, in real milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Millis {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Millis {
    fn of(mut v: Vec<f64>) -> Millis {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| crate::law::percentile(&v, q);
        Millis {
            n: v.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// What happened between two events.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// What began the phase (`start` for the first).
    pub after: String,
    pub sim_from: String,
    pub sim_to: String,
    pub real_seconds: f64,
    /// First submissions sent.
    pub orders: usize,
    /// Answered decisions (first submissions and failover orders) per real second.
    pub decisions_per_second: f64,
    pub latency_ms: Millis,
    pub allowed: usize,
    pub denied: usize,
    /// Denial and refusal codes, with counts (the most frequent first).
    pub codes: Vec<(String, usize)>,
    /// Answers 503, retried (the store could not answer, the agent was overloaded or not
    /// ready, its clock behind the fleet's latest change), by code.
    pub unavailable: usize,
    pub unavailable_codes: Vec<(String, usize)>,
    /// Orders never decided (every retry 503, or no answer).
    pub undecided: usize,
    /// Denials that named a failover treaty; the new orders sent there, and those allowed.
    pub failovers_offered: usize,
    pub failover_orders: usize,
    pub failover_allowed: usize,
    /// A nonce sent again in another message: refused `replayed`, of those sent.
    pub replays_refused: usize,
    pub replays_sent: usize,
    /// The same bytes sent to another agent: answered as the recorded decision, of those sent.
    pub repeats_answered: usize,
    pub repeats_sent: usize,
    /// Of the provider answers to orders allowed in the phase: accepted / all (unanswered
    /// reservations count as not filled).
    pub fill_rate: f64,
    /// ACKs the agents applied, and those they refused, by code.
    pub acks_applied: usize,
    pub acks_refused: Vec<(String, usize)>,
    /// Receipts the agents wrote in the phase (sum of `treaty_law_receipts_written` moves).
    pub receipts_written: u64,
    /// Decisions (resubmissions' included) and applied ACKs answered in the phase: each has a
    /// receipt.
    pub receipted_answers: usize,
    /// How late the generator sent, p99, real ms (a saturated generator shows here).
    pub send_lag_p99_ms: f64,
}

/// The war game's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub agents: usize,
    pub rate: u32,
    pub seed: u64,
    pub sim_day: String,
    pub real_seconds: f64,
    pub phases: Vec<Phase>,
    /// Each event and what it did, in a sentence.
    pub effects: Vec<(String, String)>,
    /// Whole-day figures.
    pub total: Phase,
    /// Receipts the agents wrote and checkpointed at the end (after their logger caught up).
    pub receipts_written: u64,
    pub receipts_checkpointed: u64,
    /// Invariants checked on the answers: no nonce allowed twice, no order of the revoked
    /// treaty allowed after every agent applied the revocation.
    pub nonces_allowed_twice: usize,
    pub allowed_after_revocation_applied: usize,
    /// The killed agent answered ready again; every agent refused the revoked treaty's probe
    /// order (the revocation in force everywhere).
    pub agent_restarted_ready: bool,
    pub revocation_applied: bool,
    /// Probe orders the revocation sent (decided, so each has a receipt).
    pub probes: u64,
    pub notes: Vec<String>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// SplitMix64: a small seeded generator for the plan (not for anything secret).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A treaty as the war game uses it.
#[derive(Debug, Clone)]
struct TreatyInfo {
    id: String,
    network: String,
    regions: Vec<String>,
}

/// What the plan says to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    None,
    /// After the order, its nonce again in another message (a replay).
    Replay,
    /// After the order, the same bytes to another agent (a resubmission).
    Repeat,
}

#[derive(Debug, Clone)]
struct Planned {
    /// Simulated seconds since the day's start.
    at: f64,
    treaty: usize,
    region: usize,
    gpu: u64,
    credits: u64,
    extra: Extra,
}

/// The arrival intensity at simulated second `s`: a diurnal curve (quiet at night, busiest
/// mid-afternoon), times the surge.
fn intensity(s: f64, surge: bool) -> f64 {
    let h = s / 3_600.0;
    let diurnal = 1.0 + 0.6 * ((h - 9.0) / 24.0 * std::f64::consts::TAU).sin();
    let (from, to) = hours(Event::SurgeStart, Event::SurgeEnd);
    diurnal
        * if surge && (from..to).contains(&h) {
            SURGE_FACTOR
        } else {
            1.0
        }
}

fn hours(a: Event, b: Event) -> (f64, f64) {
    let at = |e| {
        SCRIPT
            .iter()
            .find(|(_, x)| *x == e)
            .map_or(0.0, |(h, _)| *h)
    };
    (at(a), at(b))
}

/// The day's orders, in time order: arrivals drawn from [`intensity`] by inversion on a
/// one-minute grid; the surge's extra orders go to [`SURGED`], larger.
fn plan(n: usize, treaties: &[TreatyInfo], seed: u64) -> Vec<Planned> {
    let mut rng = Rng(seed);
    let minutes = 1_440;
    let weights: Vec<f64> = (0..minutes)
        .map(|m| intensity((m as f64 + 0.5) * 60.0, true))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(minutes);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let surged = treaties.iter().position(|t| t.id == SURGED).unwrap_or(0);
    // The surge asks for the same GPU-hours however many orders the day has (1-3 GPU-hours
    // each at the default 30,000): a smaller run's quotas bite too.
    let scale = (30_000 / n.max(1)).clamp(1, 20) as u64;
    let mut out: Vec<Planned> = (0..n)
        .map(|k| {
            let u = rng.unit();
            let m = cdf.partition_point(|c| *c < u).min(minutes - 1);
            let at = (m as f64 + rng.unit()) * 60.0;
            // In the surge, the share above the base rate is the surge's own demand.
            let in_surge = rng.unit() < 1.0 - intensity(at, false) / intensity(at, true);
            let treaty = if in_surge {
                surged
            } else {
                (rng.next() % treaties.len() as u64) as usize
            };
            let regions = treaties[treaty].regions.len().max(1) as u64;
            Planned {
                at,
                treaty,
                region: (rng.next() % regions) as usize,
                gpu: if in_surge {
                    rng.range(1_000, 3_000) * scale
                } else {
                    rng.range(20, 300)
                },
                credits: rng.range(1, 6),
                extra: match k % 50 {
                    7 => Extra::Replay,
                    31 => Extra::Repeat,
                    _ => Extra::None,
                },
            }
        })
        .collect();
    out.sort_by(|a, b| a.at.total_cmp(&b.at));
    out
}

/// One answer, as the generator saw it.
#[derive(Debug, Clone)]
struct Seen {
    /// Simulated seconds since the day's start, when sent.
    at: f64,
    latency_ms: f64,
    lag_ms: f64,
    kind: Sent,
    /// `None`: never decided.
    outcome: Option<Outcome>,
    /// The codes of the 503 answers before the last.
    unavailable: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Order,
    Failover,
    Replay,
    Repeat,
}

#[derive(Debug, Clone)]
struct Outcome {
    allowed: bool,
    decided: bool,
    repeat: bool,
    code: Option<String>,
    failover: Option<String>,
    nonce: String,
    treaty: String,
}

/// A provider's answer due at a real instant.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Job {
    due_ms: u64,
    seq: u64,
    order: Vec<u8>,
    network: String,
    status: &'static str,
    used: Option<u64>,
    /// Simulated second the order was allowed (its phase).
    allowed_at: u64,
}

impl Ord for Job {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // A min-heap on the due time.
        (o.due_ms, o.seq).cmp(&(self.due_ms, self.seq))
    }
}
impl PartialOrd for Job {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// What the providers did, per phase of the allowed order: (accepted, not filled).
type Fill = Mutex<BTreeMap<usize, (usize, usize)>>;

/// The running world: clocks, keys, agents' ports, the providers' queue.
struct World {
    clock: SimClock,
    start: Instant,
    day0: i64,
    rate: f64,
    ports: Vec<u16>,
    http: ureq::Agent,
    dispatcher: SigningKey,
    reputation: SigningKey,
    providers: BTreeMap<String, SigningKey>,
    treaties: Vec<TreatyInfo>,
    attestation: RwLock<(i64, serde_json::Value)>,
    jobs: Mutex<BinaryHeap<Job>>,
    wake: Condvar,
    job_seq: AtomicU64,
    outage: AtomicBool,
    stop: AtomicBool,
    /// Probe orders decided (the revocation's), each with its receipt.
    probes: AtomicU64,
    ack_latency_ms: u64,
    ack_failure: f64,
    rng: Mutex<Rng>,
    fill: Fill,
    acks_applied: Mutex<BTreeMap<usize, usize>>,
    acks_refused: Mutex<BTreeMap<usize, BTreeMap<String, usize>>>,
    boundaries: Vec<f64>,
    round: AtomicUsize,
}

impl World {
    fn real_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
    /// Simulated seconds since the day's start, now.
    fn sim(&self) -> f64 {
        (self.clock.now().get().unix_timestamp_nanos() as f64 / 1e9) - self.day0 as f64
    }
    fn instant(&self, sim: f64) -> treaty::time::Instant {
        treaty::time::Instant::from_unix(self.day0 + sim as i64)
            .unwrap_or(treaty::time::Instant::MAX)
    }
    fn stamp(&self, sim: f64) -> String {
        treaty::time::format(self.instant(sim))
    }
    /// The real offset (ms since start) at which simulated second `s` falls.
    fn real_at(&self, s: f64) -> u64 {
        (s / self.rate * 1e3).max(0.0) as u64
    }
    fn phase_of(&self, s: f64) -> usize {
        self.boundaries.partition_point(|b| *b <= s)
    }

    /// An attestation for the dispatcher, re-issued each simulated hour (they age out after a
    /// day).
    fn attestation(&self, s: f64) -> serde_json::Value {
        let hour = (s / 3_600.0).floor() as i64;
        if let Ok(a) = self.attestation.read() {
            if a.0 == hour {
                return a.1.clone();
            }
        }
        let at = hour as f64 * 3_600.0;
        let a = serde_json::json!({
            "spec_version": "1.0", "subject": "dispatcher-1", "score_bp": 9_500,
            "issued_at": self.stamp(at), "expires": self.stamp(at + 7_200.0),
        });
        let env = signed::sign(
            &serde_json::to_vec(&a).unwrap_or_default(),
            Kind::Attestation,
            &self.reputation,
        )
        .unwrap_or_default();
        let v = treaty::json::parse_value(&env).unwrap_or_default();
        if let Ok(mut w) = self.attestation.write() {
            *w = (hour, v.clone());
        }
        v
    }

    /// POSTs `body` to `path` through the "load balancer": agents in turn, skipping one that
    /// does not answer. Returns the status and body, or `None` when no agent answered.
    fn post(&self, path: &str, body: &[u8]) -> Option<(u16, serde_json::Value, usize)> {
        let n = self.ports.len();
        let first = self.round.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|k| {
            let a = (first + k) % n;
            let (s, v) = self.post_to(self.ports[a], path, body)?;
            Some((s, v, a))
        })
    }

    /// POSTs `body` to one agent: its status and JSON answer (`Null` when not JSON), or `None`
    /// when it did not answer.
    fn post_to(&self, port: u16, path: &str, body: &[u8]) -> Option<(u16, serde_json::Value)> {
        let mut r = self
            .http
            .post(&format!("http://127.0.0.1:{port}{path}"))
            .header("Content-Type", "application/json")
            .send(body)
            .ok()?;
        let b = r
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .unwrap_or_default();
        Some((
            r.status().as_u16(),
            treaty::json::parse_value(&b).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// POSTs, retrying a 503 as a client would: (status, body, agent), and the 503s' codes.
    fn post_retrying(
        &self,
        path: &str,
        body: &[u8],
    ) -> (Option<(u16, serde_json::Value, usize)>, Vec<String>) {
        let mut unavailable = Vec::new();
        for _ in 0..RETRIES_503 {
            match self.post(path, body) {
                Some((503, v, _)) => {
                    let code = v["error"]["code"]
                        .as_str()
                        .or(v["denials"][0]["code"].as_str())
                        .unwrap_or("503");
                    unavailable.push(code.to_owned());
                    std::thread::sleep(Duration::from_millis(50));
                }
                None => {
                    unavailable.push("no-answer".into());
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return (other, unavailable),
            }
        }
        (None, unavailable)
    }

    fn order(
        &self,
        id: String,
        treaty: &TreatyInfo,
        region: &str,
        p: &Planned,
        nonce: &str,
        s: f64,
    ) -> Vec<u8> {
        let o = serde_json::json!({
            "spec_version": "1.0",
            "order_id": id,
            "treaty_id": treaty.id,
            "nonce": nonce,
            "issued_at": self.stamp(s),
            "not_after": self.stamp(s + validity(self.rate)),
            "region": region,
            "gpu_milli_hours": p.gpu,
            "credits": p.credits,
            "attestation": self.attestation(s),
        });
        signed::sign(
            &serde_json::to_vec(&o).unwrap_or_default(),
            Kind::Order,
            &self.dispatcher,
        )
        .unwrap_or_default()
    }

    /// Whether the agent on `port` refuses an order for `treaty` as inactive (the revocation in
    /// force there). Each probe is a fresh order; its answer is counted as a probe.
    fn probe_inactive(&self, port: u16, treaty: &str, k: u64) -> bool {
        let Some(t) = self.treaties.iter().find(|t| t.id == treaty) else {
            return false;
        };
        let p = Planned {
            at: 0.0,
            treaty: 0,
            region: 0,
            gpu: 1,
            credits: 1,
            extra: Extra::None,
        };
        let region = t.regions.first().cloned().unwrap_or_default();
        let nonce = format!("{:032x}", 0xb0_0000_0000u64 + k);
        let body = self.order(format!("wg-probe-{k}"), t, &region, &p, &nonce, self.sim());
        let Some((status, v)) = self.post_to(port, "/v1/decide", &body) else {
            return false;
        };
        if status == 200 && v["repeat"].is_boolean() {
            self.probes.fetch_add(1, Ordering::Relaxed);
        }
        v["denials"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x["code"] == "treaty-inactive"))
    }

    /// Sends one signed order; on an allowance, the provider's answers are scheduled.
    fn send(&self, body: &[u8], kind: Sent, s: f64, lag_ms: f64, network: &str, gpu: u64) -> Seen {
        let t0 = Instant::now();
        let (answer, unavailable) = self.post_retrying("/v1/decide", body);
        let latency_ms = t0.elapsed().as_secs_f64() * 1e3;
        let outcome = answer.and_then(|(status, v, _)| {
            let payload = payload(body)?;
            let nonce = payload["nonce"].as_str()?.to_owned();
            let treaty = payload["treaty_id"].as_str()?.to_owned();
            let code = v["denials"][0]["code"].as_str().map(str::to_owned);
            let allowed = status == 200 && v["allowed"] == serde_json::json!(true);
            // Which provider's breaker tripped is the point of that denial: named with it.
            let code = code.map(|c| {
                if c == "provider-unhealthy" {
                    format!("{c} {treaty}")
                } else {
                    c
                }
            });
            Some(Outcome {
                allowed,
                // A decision (each has a receipt) is answered 200 with `repeat`; a refusal of
                // a message that was never decided has no such field.
                decided: status == 200 && v["repeat"].is_boolean(),
                repeat: v["repeat"] == serde_json::json!(true),
                code: if allowed {
                    None
                } else {
                    code.or(Some(format!("http-{status}")))
                },
                failover: v["failover"]["treaty_id"].as_str().map(str::to_owned),
                nonce,
                treaty,
            })
        });
        if let Some(o) = &outcome {
            if o.allowed && !o.repeat {
                self.schedule(body, network, gpu, s);
            }
        }
        Seen {
            at: s,
            latency_ms,
            lag_ms,
            kind,
            outcome,
            unavailable,
        }
    }

    /// The provider's behaviour for an order allowed at simulated second `s`: no answer in an
    /// outage of its network; else a rejection at the failure rate, or an acceptance and, a
    /// job's length later, its completion.
    fn schedule(&self, order: &[u8], network: &str, gpu: u64, s: f64) {
        let phase = self.phase_of(s);
        if network == OUTAGE && self.outage.load(Ordering::Relaxed) {
            if let Ok(mut f) = self.fill.lock() {
                f.entry(phase).or_default().1 += 1;
            }
            return;
        }
        let (latency, fail, job_s) = match self.rng.lock() {
            Ok(mut r) => (
                // Exponential around the mean, capped at ten times it.
                (-(1.0 - r.unit()).ln() * self.ack_latency_ms as f64)
                    .min(10.0 * self.ack_latency_ms as f64),
                r.unit() < self.ack_failure,
                r.range(120, 600) as f64,
            ),
            Err(_) => return,
        };
        let now = self.real_ms();
        let push = |due_ms: u64, status: &'static str, used: Option<u64>| {
            let j = Job {
                due_ms,
                seq: self.job_seq.fetch_add(1, Ordering::Relaxed),
                order: order.to_vec(),
                network: network.to_owned(),
                status,
                used,
                allowed_at: s as u64,
            };
            if let Ok(mut q) = self.jobs.lock() {
                q.push(j);
            }
        };
        if fail {
            push(now + latency as u64, "rejected", None);
        } else {
            push(now + latency as u64, "accepted", None);
            push(
                now + latency as u64 + self.real_at(job_s),
                "completed",
                Some(gpu),
            );
        }
        self.wake.notify_one();
    }

    /// A provider thread: answers each due job with a signed ACK.
    fn provide(&self) {
        loop {
            let job = {
                let Ok(mut q) = self.jobs.lock() else { return };
                loop {
                    if self.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let now = self.real_ms();
                    match q.peek() {
                        Some(j) if j.due_ms <= now => break q.pop(),
                        Some(j) => {
                            let wait = Duration::from_millis((j.due_ms - now).min(200));
                            q = match self.wake.wait_timeout(q, wait) {
                                Ok((g, _)) => g,
                                Err(_) => return,
                            };
                        }
                        None => {
                            q = match self.wake.wait_timeout(q, Duration::from_millis(200)) {
                                Ok((g, _)) => g,
                                Err(_) => return,
                            };
                        }
                    }
                }
            };
            let Some(job) = job else { continue };
            let Some(key) = self.providers.get(&job.network) else {
                continue;
            };
            let Some(ack) = ack_of(
                &job.order,
                job.status,
                job.used,
                self.stamp(self.sim()),
                key,
            ) else {
                continue;
            };
            let (answer, _) = self.post_retrying("/v1/acks", &ack);
            let phase = self.phase_of(job.allowed_at as f64);
            let now_phase = self.phase_of(self.sim());
            match answer {
                Some((200, ..)) => {
                    if let Ok(mut a) = self.acks_applied.lock() {
                        *a.entry(now_phase).or_default() += 1;
                    }
                }
                other => {
                    let code = match &other {
                        Some((_, v, _)) => v["denials"][0]["code"]
                            .as_str()
                            .or(v["error"]["code"].as_str())
                            .unwrap_or("?")
                            .to_owned(),
                        None => "no-answer".to_owned(),
                    };
                    if let Ok(mut a) = self.acks_refused.lock() {
                        *a.entry(now_phase).or_default().entry(code).or_default() += 1;
                    }
                }
            }
            if job.status != "completed" {
                if let Ok(mut f) = self.fill.lock() {
                    let e = f.entry(phase).or_default();
                    if job.status == "accepted" {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                }
            }
        }
    }
}

fn payload(order: &[u8]) -> Option<serde_json::Value> {
    treaty::json::parse_value(&signed::open(order, Kind::Order).ok()?.payload).ok()
}

/// A provider's signed ACK of a signed order.
fn ack_of(
    order: &[u8],
    status: &str,
    used: Option<u64>,
    at: String,
    key: &SigningKey,
) -> Option<Vec<u8>> {
    use sha2::Digest;
    let payload = signed::open(order, Kind::Order).ok()?.payload;
    let o = treaty::json::parse_value(&payload).ok()?;
    let mut a = serde_json::json!({
        "spec_version": "1.0",
        "order_id": o["order_id"],
        "treaty_id": o["treaty_id"],
        "order_sha256": hex::encode(sha2::Sha256::digest(&payload)),
        "status": status,
        "at": at,
    });
    if let Some(u) = used {
        a["used_gpu_milli_hours"] = u.into();
    }
    signed::sign(&serde_json::to_vec(&a).ok()?, Kind::Ack, key).ok()
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(err)
}

fn redis(port: u16, log: &Path) -> Result<Proc, String> {
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--port", &port.to_string()])
        .stdout(std::fs::File::create(log).map_err(err)?)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("redis-server (Debian's redis-server; .ci/setup installs it): {e}"))?;
    let p = Proc(child);
    for _ in 0..250 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(p);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("redis-server never listened".into())
}

/// `treaty-agent-sim`, beside this binary.
fn agent_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("treaty-agent-sim")))
        .unwrap_or_else(|| PathBuf::from("treaty-agent-sim"))
}

struct AgentSpec {
    port: u16,
    state: PathBuf,
    key: PathBuf,
    log: PathBuf,
}

fn start_agent(
    a: &AgentSpec,
    remote: &Path,
    redis_url: &str,
    clock: &SimClock,
    max_heartbeat_age_h: i64,
) -> Result<Proc, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&a.log)
        .map_err(err)?;
    let child = Command::new(agent_binary())
        .args(["--interval", "1s", "--skew", "30s", "--max-heartbeat-age"])
        .arg(format!("{max_heartbeat_age_h}h"))
        .args(["--log-level", "warn", "--serve"])
        .arg(format!("127.0.0.1:{}", a.port))
        .arg("--remote")
        .arg(remote)
        .arg("--state")
        .arg(&a.state)
        .arg("--spool")
        .arg(a.state.with_extension("spool"))
        .args([
            "--state-url",
            redis_url,
            "--state-timeout",
            "2s",
            "--rate",
            "1000000",
        ])
        .arg("--reservation-ttl")
        .arg(format!(
            "{}s",
            reservation_ttl(f64::from(clock.rate)) as u64
        ))
        .arg("--receipt-key")
        .arg(&a.key)
        .env(treaty::time::sim::ENV, clock.render())
        .env_remove("TREATY_AGENT_TOKENS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| {
            format!(
                "{}: {e} (build it: cargo build --release -p treaty-bench --features sim-clock)",
                agent_binary().display()
            )
        })?;
    Ok(Proc(child))
}

fn ready(port: u16, within: Duration) -> bool {
    let until = Instant::now() + within;
    let http: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    while Instant::now() < until {
        if let Ok(r) = http.get(&format!("http://127.0.0.1:{port}/readyz")).call() {
            if r.status().as_u16() == 200 {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// One agent's `/metrics`, as name{labels} → value.
fn metrics(http: &ureq::Agent, port: u16) -> BTreeMap<String, f64> {
    let Ok(mut r) = http.get(&format!("http://127.0.0.1:{port}/metrics")).call() else {
        return BTreeMap::new();
    };
    let text = r.body_mut().read_to_string().unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// Signs `rel` in `gov` with exactly each required group's threshold of the demo keys.
fn approve(gov: &Path, rel: &str, keys: &[SigningKey]) -> Result<(), String> {
    let repo = treaty::source::Repo::discover(gov).map_err(err)?;
    let tree = repo
        .tree_at(repo.resolve("HEAD").map_err(err)?)
        .map_err(err)?;
    let rp = treaty::path::RepoPath::new(rel).map_err(err)?;
    let (_, _, groups) = treaty::sign::requirements(&tree, &rp).map_err(err)?;
    let bytes = std::fs::read(gov.join(rel)).map_err(err)?;
    let sig = gov.join(format!("{rel}.sig"));
    // A fresh envelope: the old signatures covered the old bytes.
    let _ = std::fs::remove_file(&sig);
    for g in &groups {
        let mut n = 0;
        for k in keys {
            if n >= g.threshold {
                break;
            }
            if g.members.iter().any(|m| m.id == k.member_id) {
                let existing = std::fs::read(&sig).ok();
                let s = treaty::sign::sign(&tree, &rp, &bytes, existing.as_deref(), k, None)
                    .map_err(err)?;
                std::fs::write(&sig, &s.envelope).map_err(err)?;
                n += 1;
            }
        }
        if n < g.threshold {
            return Err(format!(
                "{rel}: the demo keys hold {n} of group {}'s {}",
                g.name, g.threshold
            ));
        }
    }
    Ok(())
}

fn git(gov: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(gov)
        .args([
            "-c",
            "user.name=war game",
            "-c",
            "user.email=war-game@example.invalid",
        ])
        .args(args)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A new snapshot of HEAD and a heartbeat issued at `at` for `ttl`, signed by the online
/// group, committed with `message`.
fn reseal(
    gov: &Path,
    keys: &[SigningKey],
    at: treaty::time::Instant,
    ttl_h: i64,
    message: &str,
) -> Result<(), String> {
    use treaty::snapshot::{HEARTBEAT_PATH, SNAPSHOT_PATH};
    let repo = treaty::source::Repo::discover(gov).map_err(err)?;
    let tree = repo
        .tree_at(repo.resolve("HEAD").map_err(err)?)
        .map_err(err)?;
    let (trust, _) = treaty::trust::load(
        &tree,
        &treaty::trust::Anchor::Repository,
        treaty::time::now(),
    );
    let trust = trust.ok_or("the war game's federation has no usable root")?;
    let snap = treaty::snapshot::build(&tree, trust.root.version);
    let snap_bytes = treaty::snapshot::to_bytes(&snap);
    std::fs::write(gov.join(SNAPSHOT_PATH), &snap_bytes).map_err(err)?;
    approve(gov, SNAPSHOT_PATH, keys)?;
    let hb = treaty::snapshot::heartbeat(&tree, &snap_bytes, at, time::Duration::hours(ttl_h))
        .map_err(err)?;
    std::fs::write(gov.join(HEARTBEAT_PATH), treaty::snapshot::to_bytes(&hb)).map_err(err)?;
    approve(gov, HEARTBEAT_PATH, keys)?;
    git(gov, &["add", "-A"])?;
    git(gov, &["commit", "-q", "-m", message])
}

/// The revocation: the treaty set `revoked` (version + 1), approved by its groups, resealed,
/// committed and pushed to the remote the agents pull.
fn revoke(
    gov: &Path,
    remote: &Path,
    keys: &[SigningKey],
    at: treaty::time::Instant,
) -> Result<(), String> {
    let rel = format!("treaties/{REVOKED}.json");
    let mut t: serde_json::Value =
        treaty::json::parse_value(&std::fs::read(gov.join(&rel)).map_err(err)?).map_err(err)?;
    t["status"] = "revoked".into();
    t["version"] = (t["version"].as_u64().unwrap_or(1) + 1).into();
    let mut bytes = serde_json::to_vec_pretty(&t).map_err(err)?;
    bytes.push(b'\n');
    std::fs::write(gov.join(&rel), bytes).map_err(err)?;
    approve(gov, &rel, keys)?;
    git(gov, &["add", "-A"])?;
    git(
        gov,
        &[
            "commit",
            "-q",
            "-m",
            &format!("revoke {REVOKED} (war game)"),
        ],
    )?;
    reseal(
        gov,
        keys,
        at,
        12,
        "snapshot and heartbeat after the revocation",
    )?;
    let out = Command::new("git")
        .arg("-C")
        .arg(gov)
        .arg("push")
        .arg("-q")
        .arg(remote)
        .arg("HEAD:main")
        .output()
        .map_err(err)?;
    if !out.status.success() {
        return Err(format!(
            "git push: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn load_keys(dir: &Path) -> Result<Vec<SigningKey>, String> {
    let mut keys = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .collect();
    names.sort();
    for p in names {
        keys.push(SigningKey::load(&p, || Ok(String::new())).map_err(err)?);
    }
    Ok(keys)
}

/// Runs the war game; `progress` hears each event as it happens.
pub fn run(o: &Options, progress: &dyn Fn(&str)) -> Result<Report, String> {
    let agents_n = o.agents.clamp(1, MAX_AGENTS);
    let n = o.orders.clamp(100, MAX_ORDERS);
    let rate = o.rate.clamp(1, treaty::time::sim::MAX_RATE);
    let _ = std::fs::remove_dir_all(&o.work);
    std::fs::create_dir_all(&o.work).map_err(err)?;
    let gov = o.work.join("gov");
    let remote = o.work.join("remote.git");

    // The simulated day starts at the next UTC midnight (so the day's quotas are one day's),
    // at least ten real seconds ahead of the anchor (the agents start in between).
    let anchor = time::OffsetDateTime::now_utc();
    // The day starts SETUP_S real seconds after the anchor (the agents start in between), at a
    // UTC midnight (so the day's quotas are one day's); the simulated clock starts at the
    // anchor, never behind the real one.
    let setup_sim = SETUP_S * i64::from(rate);
    let day0 = (anchor.unix_timestamp() + setup_sim + 10).div_euclid(86_400) * 86_400 + 86_400;
    let clock = SimClock::parse(&format!(
        "origin={},anchor_ms={},rate={rate}",
        day0 - setup_sim,
        anchor.unix_timestamp_nanos() / 1_000_000
    ))
    .map_err(err)?;
    // The real instant the day starts.
    let day_start_ms = ((day0 - clock.origin) as f64 / f64::from(rate) * 1e3) as u64;

    progress("scaffolding the demo federation, a heartbeat on the simulated clock");
    treaty::scaffold::demo(&gov, true).map_err(err)?;
    let keys = load_keys(&gov.join("demo-keys"))?;
    // Issued at the simulated now (never ahead of the agents' clock), valid past the day's end.
    let at = clock.now() - time::Duration::minutes(1);
    let ttl_h = (day0 + 86_400 - at.unix()) / 3_600 + 6;
    reseal(&gov, &keys, at, ttl_h, "a heartbeat for the simulated day")?;
    let st = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&gov)
        .arg(&remote)
        .status()
        .map_err(err)?;
    if !st.success() {
        return Err("git clone --bare failed".into());
    }

    let mut treaties = Vec::new();
    for (net, infix, ..) in treaty::scaffold::NETWORKS {
        let id = format!("AURORA-{infix}-001");
        let t = treaty::json::parse_value(
            &std::fs::read(gov.join(format!("treaties/{id}.json"))).map_err(err)?,
        )
        .map_err(err)?;
        treaties.push(TreatyInfo {
            id,
            network: net.to_owned(),
            regions: t["regions"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|x| Some(x.as_str()?.to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    let key = |id: &str| -> Result<SigningKey, String> {
        SigningKey::load(&gov.join(format!("demo-keys/{id}.key")), || {
            Ok(String::new())
        })
        .map_err(|e| format!("the demo key {id}: {e}"))
    };

    progress("starting redis-server and the agents");
    let redis_port = free_port()?;
    let mut redis_proc = Some(redis(redis_port, &o.work.join("redis.log"))?);
    let redis_url = format!("redis://127.0.0.1:{redis_port}/0");
    let specs: Vec<AgentSpec> = (0..agents_n)
        .map(|i| {
            Ok(AgentSpec {
                port: free_port()?,
                state: o.work.join(format!("agent-{i}")),
                // The demo's `agent` role has two members; agents share them in turn (each
                // agent keeps its own log in its own state).
                key: gov.join(format!("demo-keys/agent-{}.key", 1 + i % 2)),
                log: o.work.join(format!("agent-{i}.log")),
            })
        })
        .collect::<Result<_, String>>()?;
    let mut procs: Vec<Option<Proc>> = Vec::new();
    for s in &specs {
        procs.push(Some(start_agent(s, &remote, &redis_url, &clock, ttl_h)?));
    }
    for s in &specs {
        if !ready(s.port, Duration::from_secs(60)) {
            return Err(format!(
                "the agent on :{} never became ready (its log: {})",
                s.port,
                s.log.display()
            ));
        }
    }

    let mut boundaries: Vec<f64> = SCRIPT.iter().map(|(h, _)| h * 3_600.0).collect();
    boundaries.sort_by(f64::total_cmp);
    let planned = plan(n, &treaties, o.seed);
    let mut providers = BTreeMap::new();
    for t in &treaties {
        providers.insert(t.network.clone(), key(&format!("{}-1", t.network))?);
    }
    let world = Arc::new(World {
        clock,
        start: Instant::now(),
        day0,
        rate: f64::from(rate),
        ports: specs.iter().map(|s| s.port).collect(),
        http: ureq::Agent::config_builder()
            .timeout_global(Some(HTTP_TIMEOUT))
            .http_status_as_error(false)
            .max_idle_connections_per_host(SENDERS + PROVIDERS)
            .build()
            .into(),
        dispatcher: key("dispatcher-1")?,
        reputation: key("reputation-1")?,
        providers,
        treaties: treaties.clone(),
        attestation: RwLock::new((i64::MIN, serde_json::Value::Null)),
        jobs: Mutex::new(BinaryHeap::new()),
        wake: Condvar::new(),
        job_seq: AtomicU64::new(0),
        outage: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        probes: AtomicU64::new(0),
        ack_latency_ms: o.ack_latency_ms.clamp(1, 10_000),
        ack_failure: o.ack_failure.clamp(0.0, 1.0),
        rng: Mutex::new(Rng(o.seed ^ 0xac4)),
        fill: Mutex::new(BTreeMap::new()),
        acks_applied: Mutex::new(BTreeMap::new()),
        acks_refused: Mutex::new(BTreeMap::new()),
        boundaries: boundaries.clone(),
        round: AtomicUsize::new(0),
    });
    // `start` above is a monotonic stand-in for the anchor; the day starts `day_start_ms`
    // after the anchor, so wait out what remains of that.
    let since_anchor = (time::OffsetDateTime::now_utc() - anchor)
        .whole_milliseconds()
        .max(0) as u64;
    if since_anchor > day_start_ms {
        return Err(format!(
            "setting up took {:.1} s, more than the {SETUP_S} s before the simulated day starts (a slow machine: see the agents' logs in {})",
            since_anchor as f64 / 1e3,
            o.work.display()
        ));
    }
    std::thread::sleep(Duration::from_millis(day_start_ms - since_anchor));
    let real0 = Instant::now();
    progress(&format!(
        "the simulated day {} begins: {n} orders over {:.0} real seconds",
        treaty::time::format(treaty::time::Instant::from_unix(day0).ok_or("time")?),
        DAY / f64::from(rate)
    ));

    let seen: Mutex<Vec<Seen>> = Mutex::new(Vec::with_capacity(n + n / 10));
    let next = AtomicUsize::new(0);
    let deadline_ms = (DAY / f64::from(rate) * 1e3) as u64 + 120_000;
    let mut effects: Vec<(String, String)> = Vec::new();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut revocation_applied_at: Option<f64> = None;
    let mut revocation_applied = false;
    let mut restarted_ready = false;
    let http_side: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(3)))
        .http_status_as_error(false)
        .build()
        .into();
    // The sum over agents of the last receipts-written figure each showed (a killed agent
    // keeps its last figure until it answers again).
    let mut last_written: Vec<u64> = vec![0; agents_n];
    let receipts = |last: &mut Vec<u64>| -> u64 {
        for (i, s) in specs.iter().enumerate() {
            if let Some(v) = metrics(&http_side, s.port).get("treaty_law_receipts_written") {
                last[i] = *v as u64;
            }
        }
        last.iter().sum()
    };

    /// Stops the providers when the script ends, however it ends (an event that fails
    /// returns early; without this the scope would wait on them for ever).
    struct StopOnDrop<'a>(&'a World);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.stop.store(true, Ordering::Relaxed);
            self.0.wake.notify_all();
        }
    }
    std::thread::scope(|sc| -> Result<(), String> {
        let _stop = StopOnDrop(&world);
        for _ in 0..PROVIDERS {
            let w = Arc::clone(&world);
            sc.spawn(move || w.provide());
        }
        let mut senders = Vec::new();
        for _ in 0..SENDERS {
            let w = Arc::clone(&world);
            let (planned, seen, next) = (&planned, &seen, &next);
            senders.push(sc.spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = planned.get(k) else { break };
                    if w.stop.load(Ordering::Relaxed)
                        || real0.elapsed().as_millis() as u64 > deadline_ms
                    {
                        break;
                    }
                    let due = w.real_at(p.at);
                    let now = real0.elapsed().as_millis() as u64;
                    if due > now {
                        std::thread::sleep(Duration::from_millis(due - now));
                    }
                    let lag_ms = (real0.elapsed().as_secs_f64() * 1e3 - due as f64).max(0.0);
                    let s = w.sim();
                    let t = &w.treaties[p.treaty];
                    let region = t.regions.get(p.region).cloned().unwrap_or_default();
                    let nonce = format!("{:032x}", 0x5a_0000_0000u64 + k as u64);
                    let body = w.order(format!("wg-{k}"), t, &region, p, &nonce, s);
                    let first = w.send(&body, Sent::Order, s, lag_ms, &t.network, p.gpu);
                    let follow = first.outcome.as_ref().and_then(|o| o.failover.clone());
                    mine.push(first);
                    if let Some(target) = follow {
                        // The requester's new order, signed for the treaty the answer named.
                        if let Some(ft) = w.treaties.iter().find(|x| x.id == target) {
                            let region = if ft.regions.contains(&region) {
                                region.clone()
                            } else {
                                ft.regions.first().cloned().unwrap_or_default()
                            };
                            let s2 = w.sim();
                            let nonce2 = format!("{:032x}", 0xf0_0000_0000u64 + k as u64);
                            let b2 = w.order(format!("wg-{k}-fo"), ft, &region, p, &nonce2, s2);
                            mine.push(w.send(&b2, Sent::Failover, s2, 0.0, &ft.network, p.gpu));
                        }
                    }
                    match p.extra {
                        Extra::None => {}
                        Extra::Replay => {
                            let b =
                                w.order(format!("wg-{k}-replay"), t, &region, p, &nonce, w.sim());
                            mine.push(w.send(&b, Sent::Replay, s, 0.0, &t.network, p.gpu));
                        }
                        Extra::Repeat => {
                            mine.push(w.send(&body, Sent::Repeat, s, 0.0, &t.network, p.gpu));
                        }
                    }
                }
                if let Ok(mut all) = seen.lock() {
                    all.extend(mine);
                }
            }));
        }

        // The script, on this thread: each event at its simulated hour; the receipts written
        // sampled at each boundary.
        samples.push((0.0, receipts(&mut last_written)));
        let mut restart_from: Option<usize> = None;
        for (h, event) in SCRIPT {
            let due = world.real_at(h * 3_600.0);
            let now = real0.elapsed().as_millis() as u64;
            if due > now {
                std::thread::sleep(Duration::from_millis(due - now));
            }
            samples.push((h * 3_600.0, receipts(&mut last_written)));
            progress(&format!("{:>5.1} h  {event:?}", h));
            let effect = match event {
                Event::ProviderOutage => {
                    world.outage.store(true, Ordering::Relaxed);
                    format!("the {OUTAGE} provider stops answering")
                }
                Event::ProviderBack => {
                    world.outage.store(false, Ordering::Relaxed);
                    format!("the {OUTAGE} provider answers again")
                }
                Event::SurgeStart => {
                    format!("{SURGE_FACTOR}x the orders for an hour, the extra on {SURGED}, larger")
                }
                Event::SurgeEnd => "the surge ends".into(),
                Event::AgentKilled => {
                    let victim = agents_n - 1;
                    procs[victim] = None; // kill -9 (Child::kill is SIGKILL)
                    restart_from = Some(victim);
                    format!("agent {victim} killed (SIGKILL)")
                }
                Event::AgentRestarted => match restart_from.take() {
                    Some(v) => {
                        procs[v] =
                            Some(start_agent(&specs[v], &remote, &redis_url, &clock, ttl_h)?);
                        let ok = ready(specs[v].port, Duration::from_secs(30));
                        restarted_ready = ok;
                        format!("agent {v} restarted on its state and port (ready: {ok})")
                    }
                    None => "nothing to restart".into(),
                },
                Event::RedisRestarted => {
                    redis_proc = None;
                    std::thread::sleep(Duration::from_millis(500));
                    redis_proc = Some(redis(redis_port, &o.work.join("redis-2.log"))?);
                    "Redis killed, 0.5 s real down, started again empty (no persistence)".into()
                }
                Event::TreatyRevoked => {
                    let t0 = Instant::now();
                    let at = world.instant(world.sim());
                    revoke(&gov, &remote, &keys, at)?;
                    // Until every agent refuses the treaty as revoked (bounded): a probe order
                    // for it at each agent, directly.
                    let mut applied = false;
                    for round in 0..300u64 {
                        let all = specs.iter().enumerate().all(|(i, s)| {
                            world.probe_inactive(s.port, REVOKED, round * 16 + i as u64)
                        });
                        if all {
                            applied = true;
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    revocation_applied = applied;
                    if applied {
                        revocation_applied_at = Some(world.sim());
                    }
                    format!(
                        "{REVOKED} revoked by an approved commit pushed to the remote; every agent applied it {:.1} s (real) later{}",
                        t0.elapsed().as_secs_f64(),
                        if applied { "" } else { " (not seen on every agent's metrics)" }
                    )
                }
            };
            effects.push((format!("{:?}", event), effect));
        }
        // The rest of the day, then the providers' last answers.
        let end = world.real_at(DAY);
        let now = real0.elapsed().as_millis() as u64;
        if end > now {
            std::thread::sleep(Duration::from_millis(end - now));
        }
        for h in senders {
            let _ = h.join();
        }
        // The providers' answers due now go out; the completions of jobs still running at
        // midnight are left (bounded: two real seconds).
        std::thread::sleep(Duration::from_secs(2));
        world.stop.store(true, Ordering::Relaxed);
        world.wake.notify_all();
        samples.push((DAY, receipts(&mut last_written)));
        Ok(())
    })?;
    let real_seconds = real0.elapsed().as_secs_f64();

    // The loggers catch up (bounded), then the receipts written and checkpointed.
    let mut written = 0;
    let mut checkpointed = 0;
    for _ in 0..50 {
        (written, checkpointed) = (0, 0);
        for s in &specs {
            let m = metrics(&http_side, s.port);
            written += m.get("treaty_law_receipts_written").copied().unwrap_or(0.0) as u64;
            checkpointed += m
                .get("treaty_law_receipts_checkpointed")
                .copied()
                .unwrap_or(0.0) as u64;
        }
        if written == checkpointed {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(procs);
    drop(redis_proc);

    let seen = seen.into_inner().map_err(err)?;
    let fill = world.fill.lock().map_err(err)?.clone();
    let acks = world.acks_applied.lock().map_err(err)?.clone();
    let acks_refused = world.acks_refused.lock().map_err(err)?.clone();
    let mut phases = Vec::new();
    let names: Vec<String> = std::iter::once("start".to_owned())
        .chain(SCRIPT.iter().map(|(_, e)| format!("{e:?}")))
        .collect();
    let edges: Vec<f64> = std::iter::once(0.0)
        .chain(boundaries.iter().copied())
        .chain(std::iter::once(DAY))
        .collect();
    for (i, w) in edges.windows(2).enumerate() {
        let (from, to) = (w[0], w[1]);
        let rows: Vec<&Seen> = seen.iter().filter(|s| s.at >= from && s.at < to).collect();
        let mut p = summarize(&rows, (to - from) / f64::from(rate));
        p.after = names.get(i).cloned().unwrap_or_default();
        p.sim_from = clock_of(from);
        p.sim_to = clock_of(to);
        let (ok, bad) = fill.get(&i).copied().unwrap_or_default();
        p.fill_rate = ok as f64 / (ok + bad).max(1) as f64;
        p.acks_applied = acks.get(&i).copied().unwrap_or_default();
        p.acks_refused = by_count(acks_refused.get(&i).cloned().unwrap_or_default());
        p.receipts_written = samples
            .get(i + 1)
            .zip(samples.get(i))
            .map_or(0, |(b, a)| b.1.saturating_sub(a.1));
        p.receipted_answers += p.acks_applied;
        phases.push(p);
    }
    let all: Vec<&Seen> = seen.iter().collect();
    let mut total = summarize(&all, real_seconds);
    total.after = "the whole day".into();
    total.sim_from = clock_of(0.0);
    total.sim_to = clock_of(DAY);
    let (ok, bad) = fill.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    total.fill_rate = ok as f64 / (ok + bad).max(1) as f64;
    total.acks_applied = acks.values().sum();
    let mut all_refused: BTreeMap<String, usize> = BTreeMap::new();
    for m in acks_refused.values() {
        for (c, k) in m {
            *all_refused.entry(c.clone()).or_default() += k;
        }
    }
    total.acks_refused = by_count(all_refused);
    total.receipted_answers += total.acks_applied;
    total.receipts_written = written;

    // Invariants on the answers themselves.
    // A nonce allowed twice (a first allowance at two agents, or an allowance after a replay)
    // is the failure; a nonce decided again after lost state (`state-too-new` on a retry) is
    // the birth rule working, not a double decision.
    let mut firsts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &seen {
        if let Some(o) = &s.outcome {
            if o.allowed && !o.repeat {
                *firsts.entry(o.nonce.as_str()).or_default() += 1;
            }
        }
    }
    let twice = firsts.values().filter(|c| **c > 1).count();
    let after_revocation = revocation_applied_at.map_or(0, |t| {
        seen.iter()
            .filter(|s| s.at > t)
            .filter_map(|s| s.outcome.as_ref())
            .filter(|o| o.allowed && !o.repeat && o.treaty == REVOKED)
            .count()
    });
    let mut notes = vec![
        format!("{agents_n} agents (treaty-agent-sim, this build), one redis-server, {SENDERS} sender and {PROVIDERS} provider threads, all on this machine's cores; latency is the client's round trip through the keep-alive connection pool"),
        format!(
            "simulated clock: {rate} simulated seconds per real second; orders valid {:.0} simulated minutes ({:.1} s real); reservations wait {:.0} simulated minutes ({:.1} s real) for an ACK",
            validity(f64::from(rate)) / 60.0,
            validity(f64::from(rate)) / f64::from(rate),
            reservation_ttl(f64::from(rate)) / 60.0,
            reservation_ttl(f64::from(rate)) / f64::from(rate)
        ),
        "a sender retries an answer 503 up to 5 times, 50 ms apart, as a client would; an order still 503 is counted undecided".into(),
    ];
    if written != checkpointed {
        notes.push(format!(
            "the receipt loggers had not checkpointed {} receipt(s) at the end",
            written.saturating_sub(checkpointed)
        ));
    }
    Ok(Report {
        agents: agents_n,
        rate,
        seed: o.seed,
        sim_day: treaty::time::format(treaty::time::Instant::from_unix(day0).ok_or("time")?),
        real_seconds,
        phases,
        effects,
        total,
        receipts_written: written,
        receipts_checkpointed: checkpointed,
        nonces_allowed_twice: twice,
        agent_restarted_ready: restarted_ready,
        revocation_applied,
        probes: world.probes.load(Ordering::Relaxed),
        allowed_after_revocation_applied: after_revocation,
        notes,
    })
}

fn clock_of(s: f64) -> String {
    let m = (s / 60.0).round() as i64;
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn summarize(rows: &[&Seen], real_seconds: f64) -> Phase {
    let mut p = Phase {
        real_seconds,
        ..Phase::default()
    };
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut busy: BTreeMap<String, usize> = BTreeMap::new();
    let mut lat = Vec::new();
    let mut lag = Vec::new();
    let mut answered = 0;
    for s in rows {
        p.unavailable += s.unavailable.len();
        for c in &s.unavailable {
            *busy.entry(c.clone()).or_default() += 1;
        }
        lat.push(s.latency_ms);
        match s.kind {
            Sent::Order => {
                p.orders += 1;
                lag.push(s.lag_ms);
            }
            Sent::Failover => p.failover_orders += 1,
            Sent::Replay => p.replays_sent += 1,
            Sent::Repeat => p.repeats_sent += 1,
        }
        let Some(o) = &s.outcome else {
            p.undecided += 1;
            continue;
        };
        if o.decided {
            p.receipted_answers += 1;
        }
        match s.kind {
            Sent::Replay => {
                if o.code.as_deref() == Some("replayed") {
                    p.replays_refused += 1;
                }
                continue;
            }
            Sent::Repeat => {
                if o.repeat {
                    p.repeats_answered += 1;
                }
                continue;
            }
            Sent::Order | Sent::Failover => {}
        }
        answered += 1;
        if o.failover.is_some() {
            p.failovers_offered += 1;
        }
        if o.allowed {
            p.allowed += 1;
            if s.kind == Sent::Failover {
                p.failover_allowed += 1;
            }
        } else {
            p.denied += 1;
            *codes.entry(o.code.clone().unwrap_or_default()).or_default() += 1;
        }
    }
    p.decisions_per_second = answered as f64 / real_seconds.max(1e-9);
    p.latency_ms = Millis::of(lat);
    p.send_lag_p99_ms = Millis::of(lag).p99;
    p.codes = by_count(codes);
    p.unavailable_codes = by_count(busy);
    p
}

fn by_count(m: BTreeMap<String, usize>) -> Vec<(String, usize)> {
    let mut c: Vec<(String, usize)> = m.into_iter().collect();
    c.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    c
}
