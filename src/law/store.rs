//! Replay and quota state (docs/law.md § State): nonces, reservations, jobs and day counters,
//! behind the [`LawStore`] seam an embedded store fills here and a shared one (Redis) fills for
//! a fleet.
//!
//! Owns the state machine every store must implement alike: the first decision on a correctly
//! signed order consumes its nonce, allow or deny; a byte-identical resubmission gets the
//! original decision back; a different message with a used nonce is `replayed`; an allowed order
//! reserves quota until its provider ACKs (a running job) or the reservation expires (released);
//! a completion ends the job and trues up the day's counter with the usage consumed; a job past
//! its deadline is closed `job-timed-out`. The store also keeps its birth time (orders issued
//! before it plus the skew are `state-too-new`: a wiped or restored store cannot reopen a replay
//! window) and a time high-water mark (no decision while the clock is behind it).
//! [`MemStore`] holds it all in memory; `persist` makes it durable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::time::Instant;

use super::decide::{Ceilings, Usage};
use super::message::AckStatus;
use super::Decision;

/// Why the store could not answer (the decision is then not made: the caller answers 503).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the state store is damaged: {reason}")]
    Damaged { path: String, reason: String },
    #[error("the state store's lock is poisoned (a thread panicked while holding it)")]
    Poisoned,
    /// Another process holds the state directory: one agent per `--state`.
    #[error("{path} is held by another process: one agent per state directory (two would each accept the same order)")]
    Locked { path: String },
    /// The shared store cannot answer (down, slow past its timeout, refused, or its state was
    /// lost): nothing is decided.
    #[error("the shared state at {store} is unavailable: {reason}")]
    Unavailable { store: String, reason: String },
    /// Other agents changed the usage every time this one tried to commit.
    /// The shared store's server is one the guarantees do not hold on (a Cluster, an
    /// eviction policy, an old version): refused, at start.
    #[error("the shared state at {store} cannot be used: {reason}")]
    Unsupported { store: String, reason: String },
    #[error("the shared state changed under {tries} attempts to record the decision (other agents deciding the same treaty): not decided, retry")]
    Contended { tries: usize },
}

/// A judgement for the store to record, and at which usage figures it stands. The embedded
/// store judges under its lock (the figures cannot change); a shared store judges outside any
/// lock and commits only while the figures are still on the judged side of the order's
/// ceilings (docs/law.md § Scaling out), else it judges again.
#[derive(Debug, Clone)]
pub struct Judged {
    pub decision: Decision,
    pub holds: Holds,
}

/// At which figures a judgement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// Whatever the figures for a denial (a reason other than a quota); for an allowance only
    /// at the very figures judged (a caller that gave no ceilings).
    Regardless,
    /// Allowed: while every figure is under its ceiling.
    WhileAdmitted(Ceilings),
    /// Denied by quotas alone: while some figure is over its ceiling.
    WhileRefused(Ceilings),
}

impl Judged {
    /// A judgement whose figures do not matter: a journaled event replayed, a test's.
    pub fn regardless(decision: Decision) -> Judged {
        Judged {
            decision,
            holds: Holds::Regardless,
        }
    }
}

/// The replay scope of an order: its signer's key and its nonce.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NonceKey {
    pub keyid: String,
    pub nonce: String,
}

/// What a reservation holds of the quotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub order_id: String,
    pub treaty_id: String,
    pub requester: String,
    pub gpu_milli_hours: u64,
    pub credits: u64,
    /// The UTC day (`YYYY-MM-DD`) whose counters the hold was taken from.
    pub day: String,
    /// SHA-256 (hex) of the order's signed payload: an ACK names it, so an ACK for an earlier
    /// order that used the same id can never act on this one.
    pub order_sha256: String,
    /// The longest this order's job may run, in seconds (the order's own limit, capped by the
    /// operator's).
    pub max_job_seconds: u64,
}

/// Where an allowed order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Waiting for the provider's ACK until `until` (Unix seconds).
    Reserved { until: i64 },
    /// Accepted; the job may run until `until`.
    Running { until: i64 },
}

/// One allowed order's hold and phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub hold: Hold,
    pub phase: Phase,
}

/// How an order's nonce had been used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Decided now (and durable).
    First(Decision),
    /// The same message again: its original decision.
    Repeat(Decision),
    /// Another message with this nonce: the original's order id.
    Replayed { original_order: String },
    /// A new nonce, but the order id names an order already decided (ids are unique: ACKs and
    /// look-ups find an order by it).
    OrderIdTaken,
    /// `now` is behind the latest change this store made (by more than [`CLOCK_TOLERANCE`]):
    /// nothing is decided, nothing changes.
    ClockBehind { high_water: i64 },
}

/// How far (seconds) a caller's `now` may trail the store's latest change: calls read the clock
/// before they take the store's lock, so a call can be a moment older than the one before it.
/// Nonces are kept this much longer than their orders can be valid, so no such call ever finds
/// a nonce forgotten while its order is still valid.
pub const CLOCK_TOLERANCE: i64 = 2;

/// What an ACK did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckOutcome {
    /// Accepted within the reservation: the job runs.
    Running,
    /// Rejected by the provider: the reservation is released.
    Released,
    /// The job ended; its concurrency is free and the day's counter holds the usage consumed.
    Ended,
    /// The same ACK again (nothing changed).
    Repeat,
}

/// Why an ACK was refused (it changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckRefusal {
    #[error("no allowed order {order_id:?} under treaty {treaty_id:?}")]
    UnknownOrder { treaty_id: String, order_id: String },
    #[error("the reservation for order {order_id:?} expired before the ACK")]
    ReservationExpired { order_id: String },
    #[error("order {order_id:?} is not running (accept it first)")]
    NotRunning { order_id: String },
    #[error("order {order_id:?} was already accepted")]
    AlreadyAccepted { order_id: String },
    #[error(
        "the ACK is for another order that used the id {order_id:?} (its order digest differs)"
    )]
    OtherOrder { order_id: String },
    #[error("the job of order {order_id:?} ran past its deadline and was closed as timed out")]
    JobTimedOut { order_id: String },
    #[error("this agent's clock is behind the last change it made (at {high_water}): nothing is applied until it catches up")]
    ClockBehind { high_water: i64 },
}

/// The facts about an order that the store keeps (not the judgement).
#[derive(Debug, Clone)]
pub struct OrderFacts {
    pub key: NonceKey,
    /// SHA-256 of the signed payload: the same message, or another one with this nonce.
    pub digest: [u8; 32],
    pub hold: Hold,
    /// When the nonce may be forgotten (the order's `not_after` plus the skew).
    pub forget_after: i64,
}

/// The operator's time bounds the store applies (from [`super::decide::Bounds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub reservation_ttl_seconds: u64,
    pub max_job_seconds: u64,
}

/// What a provider's ACK says, as the store needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckFacts<'a> {
    pub treaty_id: &'a str,
    pub order_id: &'a str,
    /// SHA-256 (hex) of the order's payload the ACK answers.
    pub order_sha256: &'a str,
    pub status: AckStatus,
    pub used_gpu_milli_hours: Option<u64>,
}

/// The state every store keeps.
pub trait LawStore: Send + Sync {
    /// When this store's state began (a wiped or restored store is newer than its orders).
    fn birth(&self) -> Instant;
    /// The latest instant a decision was made at.
    fn high_water(&self) -> Instant;
    /// Atomically: if the nonce is new, compute the usage at `now` (after releasing expired
    /// reservations and timed-out jobs), let `judge` decide, record the nonce with the
    /// decision and, when allowed, the reservation; durable before it returns.
    fn decide(
        &self,
        facts: &OrderFacts,
        now: Instant,
        timing: Timing,
        judge: &mut dyn FnMut(&Usage) -> Judged,
    ) -> Result<Recorded, StoreError>;
    /// Applies a provider's ACK or completion for an allowed order.
    fn ack(
        &self,
        ack: &AckFacts,
        now: Instant,
        timing: Timing,
    ) -> Result<Result<AckOutcome, AckRefusal>, StoreError>;
    /// The decision recorded for exactly this message (its signer's nonce and its payload
    /// digest), if any: a resubmission learns its original decision whatever else changed
    /// since (the law's freshness, the order's own validity).
    fn recorded(&self, key: &NonceKey, digest: &[u8; 32]) -> Result<Option<Decision>, StoreError>;
    /// The decision recorded for an order id.
    fn order(&self, order_id: &str) -> Result<Option<Decision>, StoreError>;
    /// Whether the store can record a change now (`Err`: why not, e.g. an earlier write
    /// failed). Readiness reports it.
    fn healthy(&self) -> Result<(), String> {
        Ok(())
    }
    /// The usage of a treaty now (its requester-independent counters).
    fn usage(&self, treaty_id: &str, now: Instant) -> Result<TreatyUsage, StoreError>;
    /// A treaty's fill over the KPI window ending at `now` (the last [`FILL_SLOTS`] slots of
    /// [`FILL_SLOT_SECONDS`]).
    fn fill(&self, treaty_id: &str, now: Instant) -> Result<Fill, StoreError>;
    /// Operators (`treaty-agent state stats`): what the store holds now.
    fn stats(&self, now: Instant) -> Result<StateStats, StoreError>;
    /// Operators (`treaty-agent state clear`): forgets every nonce, decision, reservation,
    /// job and counter, and moves the birth strictly forward, to `now` or later (never before
    /// the latest change): every order issued before it plus the skew is then
    /// `state-too-new`, so a clear never reopens the replay window. Answers the new birth.
    /// ACKs for orders allowed before it find no reservation (`unknown-order`).
    fn clear(&self, now: Instant) -> Result<Instant, StoreError>;
}

/// One slot of the fill window, in seconds, and the slots in it (12 × 5 min: the KPI window).
pub const FILL_SLOT_SECONDS: i64 = 300;
pub const FILL_SLOTS: i64 = 12;

/// A treaty's provider's answers over the window: allowed orders it accepted, and those it
/// rejected or let expire unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Fill {
    pub filled: u64,
    pub unfilled: u64,
}

/// The start of `t`'s fill slot.
pub fn fill_slot(t: i64) -> i64 {
    t - t.rem_euclid(FILL_SLOT_SECONDS)
}

/// What a store holds, for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StateStats {
    /// When the state began (Unix seconds): orders issued before it plus the skew are refused.
    pub birth: i64,
    /// The latest time a change was made at.
    pub high_water: i64,
    /// Changes recorded since the store was created (the journal's, or the server's, sequence
    /// number).
    pub seq: u64,
    /// Nonces kept (the replay window's orders).
    pub nonces: u64,
    /// Decisions kept (by order id).
    pub decisions: u64,
    /// Allowed orders waiting for their provider's ACK.
    pub reserved: u64,
    /// Jobs running.
    pub running: u64,
    /// Counting stopped at a bound (a shared store's keys are counted in batches): the
    /// figures are at least these.
    pub partial: bool,
}

/// The birth after a clear at `now`: strictly after the old birth, never before the latest
/// change (an order decided then was issued at most the skew later, and `issued <= birth +
/// skew` is refused).
pub fn birth_after_clear(now: i64, birth: i64, high_water: i64) -> i64 {
    now.max(high_water).max(birth.saturating_add(1))
}

/// A treaty's usage, for `GET /v1/treaties/ID/usage` and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TreatyUsage {
    pub gpu_milli_hours_today: u64,
    pub reserved: u64,
    pub running: u64,
    pub reservations_expired: u64,
    pub jobs_timed_out: u64,
    pub acks_accepted: u64,
    pub allowed: u64,
}

/// The whole state, as persisted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub birth: i64,
    pub high_water: i64,
    /// Nonce → (payload digest hex, order id, forget after).
    pub nonces: BTreeMap<String, NonceRecord>,
    /// Order id → its decision.
    pub decisions: BTreeMap<String, Decision>,
    /// `treaty/order` → reservation or job.
    pub reservations: BTreeMap<String, Reservation>,
    /// `day/treaty` → milli-GPU-hours held or used that day.
    pub treaty_day: BTreeMap<String, u64>,
    /// `day` → milli-GPU-hours federation-wide.
    pub federation_day: BTreeMap<String, u64>,
    /// `day/requester` → credits.
    pub requester_day: BTreeMap<String, u64>,
    /// Per treaty: counters for the KPIs.
    pub counters: BTreeMap<String, TreatyCounters>,
    /// When expired entries were last swept (Unix seconds): at most once a second.
    #[serde(default)]
    pub last_sweep: i64,
    /// The sequence number of the last journaled event this state holds (durable stores).
    #[serde(default)]
    pub seq: u64,
    /// Order ids whose job ended, kept as long as their decision: a completion sent again is a
    /// repeat, one for a job that ran out is refused as such whenever it comes.
    #[serde(default)]
    pub ended: BTreeMap<String, Ended>,
    /// The provider's answers to allowed orders per treaty and slot of the KPI window
    /// (`SLOT/TREATY` → accepted, then rejected or never answered): its fill rate, which every
    /// agent reads from the store (docs/law.md § Failover).
    #[serde(default)]
    pub fill: BTreeMap<String, [u64; 2]>,
    /// What the sweep needs without walking the whole state; derived, never persisted, built
    /// on the first sweep after a load.
    #[serde(skip)]
    index: Option<Expiry>,
    /// Tests only: sweep by walking the whole state (the definition the index must equal).
    #[cfg(test)]
    #[serde(skip)]
    walk: bool,
}

/// The sweep's index. A decision is kept while its nonce or its reservation is: the index has
/// the nonces by the second after which they are forgotten, the orders whose nonce went while
/// a reservation or job still held them (`outlived`), and the orders whose reservation ended
/// since the last sweep (`released`). With it a sweep costs what expires, not what is kept:
/// the kept state is the replay window's worth of orders, and a sweep runs every second.
#[derive(Debug, Clone, Default)]
struct Expiry {
    nonces: BTreeSet<(i64, String)>,
    outlived: BTreeSet<String>,
    released: BTreeSet<String>,
}

impl Expiry {
    /// The index of a state loaded whole (one walk, at the first sweep after a load).
    fn of(
        nonces: &BTreeMap<String, NonceRecord>,
        decisions: &BTreeMap<String, Decision>,
        reservations: &BTreeMap<String, Reservation>,
    ) -> Expiry {
        let mut x = Expiry {
            nonces: nonces
                .iter()
                .map(|(id, n)| (forget_at(n), id.clone()))
                .collect(),
            ..Expiry::default()
        };
        let with_nonce: BTreeSet<&String> = nonces.values().map(|n| &n.order_id).collect();
        for (order, d) in decisions {
            if !with_nonce.contains(order) {
                x.outlived.insert(order.clone());
                if !reservations.contains_key(&res_id(&d.treaty_id, order)) {
                    x.released.insert(order.clone());
                }
            }
        }
        x
    }
}

/// How a job ended, and for which order (its payload digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ended {
    pub order_sha256: String,
    /// Closed at its deadline, not by a completion.
    pub timed_out: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceRecord {
    pub digest: String,
    pub order_id: String,
    pub forget_after: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreatyCounters {
    pub allowed: u64,
    pub acks_accepted: u64,
    pub reservations_expired: u64,
    pub jobs_timed_out: u64,
}

/// The second after which a nonce record is forgotten.
fn forget_at(n: &NonceRecord) -> i64 {
    n.forget_after.saturating_add(CLOCK_TOLERANCE)
}

fn nonce_id(k: &NonceKey) -> String {
    format!("{}/{}", k.keyid, k.nonce)
}

fn res_id(treaty: &str, order: &str) -> String {
    format!("{treaty}/{order}")
}

/// The UTC day of `t`, `YYYY-MM-DD`.
pub fn day(t: Instant) -> String {
    let d = t.get().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl State {
    pub fn new(birth: Instant) -> State {
        State {
            birth: birth.unix(),
            high_water: birth.unix(),
            ..State::default()
        }
    }

    /// Releases reservations whose ACK did not come in time and closes jobs past their
    /// deadline; forgets nonces whose orders can no longer be valid (kept [`CLOCK_TOLERANCE`]
    /// longer), and decisions whose nonce is forgotten and that hold no quota. Runs only inside
    /// a change that is journaled, so a replay of the journal sweeps exactly as the live store.
    fn sweep(&mut self, now: i64) {
        #[cfg(test)]
        if self.walk {
            return self.sweep_by_walking(now);
        }
        if now <= self.last_sweep {
            return;
        }
        self.last_sweep = now;
        self.expire_reservations(now);
        if self.index.is_none() {
            self.index = Some(Expiry::of(
                &self.nonces,
                &self.decisions,
                &self.reservations,
            ));
        }
        let Some(index) = self.index.as_mut() else {
            return;
        };
        // Nonces past their time, in time order: each one's decision goes with it unless a
        // reservation or job still holds the order.
        while index.nonces.first().is_some_and(|(at, _)| *at < now) {
            let Some((_, id)) = index.nonces.pop_first() else {
                break;
            };
            let Some(n) = self.nonces.remove(&id) else {
                continue;
            };
            let held = self.decisions.get(&n.order_id).is_some_and(|d| {
                self.reservations
                    .contains_key(&res_id(&d.treaty_id, &n.order_id))
            });
            if held {
                index.outlived.insert(n.order_id);
            } else {
                self.decisions.remove(&n.order_id);
                self.ended.remove(&n.order_id);
            }
        }
        // Orders released since the last sweep whose nonce had already gone.
        for order in std::mem::take(&mut index.released) {
            let held = self.decisions.get(&order).is_some_and(|d| {
                self.reservations
                    .contains_key(&res_id(&d.treaty_id, &order))
            });
            if !held && index.outlived.remove(&order) {
                self.decisions.remove(&order);
                self.ended.remove(&order);
            }
        }
        self.prune_days(now);
    }

    /// Releases reservations whose ACK did not come by `now` and closes jobs past their
    /// deadline. Reservations are bounded by the law's concurrency quotas: walked whole.
    fn expire_reservations(&mut self, now: i64) {
        let mut expired = Vec::new();
        for (id, r) in &self.reservations {
            match r.phase {
                Phase::Reserved { until } if now > until => {
                    expired.push((id.clone(), false, until))
                }
                Phase::Running { until } if now > until => expired.push((id.clone(), true, until)),
                _ => {}
            }
        }
        for (id, timed_out, until) in expired {
            if let Some(r) = self.reservations.remove(&id) {
                self.released(&r.hold.order_id);
                let c = self.counters.entry(r.hold.treaty_id.clone()).or_default();
                if timed_out {
                    // A job that ran out its time keeps its GPU hours counted (they were held).
                    c.jobs_timed_out += 1;
                    self.ended.insert(
                        r.hold.order_id.clone(),
                        Ended {
                            order_sha256: r.hold.order_sha256.clone(),
                            timed_out: true,
                        },
                    );
                } else {
                    c.reservations_expired += 1;
                    self.release_hold(&r.hold);
                    // Never answered: unfilled, when its time ran out.
                    self.count_fill(&r.hold.treaty_id, until, false);
                }
            }
        }
    }

    /// Counts a provider's answer (or its silence) at `at`.
    fn count_fill(&mut self, treaty: &str, at: i64, filled: bool) {
        let e = self
            .fill
            .entry(format!("{}/{treaty}", fill_slot(at)))
            .or_default();
        e[usize::from(!filled)] += 1;
    }

    /// A treaty's fill over the window ending at `now`, read-only: as the next change would
    /// see it after sweeping (reservations past their time count as unanswered).
    pub fn fill_at(&self, treaty: &str, now: Instant) -> Fill {
        let cur = fill_slot(now.unix());
        let oldest = cur - (FILL_SLOTS - 1) * FILL_SLOT_SECONDS;
        let mut f = Fill::default();
        for r in self
            .reservations
            .values()
            .filter(|r| r.hold.treaty_id == treaty)
        {
            if let Phase::Reserved { until } = r.phase {
                if now.unix() > until && fill_slot(until) >= oldest {
                    f.unfilled += 1;
                }
            }
        }
        for k in 0..FILL_SLOTS {
            if let Some([a, b]) = self
                .fill
                .get(&format!("{}/{treaty}", cur - k * FILL_SLOT_SECONDS))
            {
                f.filled += a;
                f.unfilled += b;
            }
        }
        f
    }

    /// Notes that `order`'s reservation or job is gone, for the next sweep.
    fn released(&mut self, order: &str) {
        if let Some(x) = self.index.as_mut() {
            x.released.insert(order.to_owned());
        }
    }

    /// Forgets the day counters of days before yesterday: an order is judged against its own
    /// day, and no order older than the replay window is decided.
    fn prune_days(&mut self, now: i64) {
        let Some(cutoff) = Instant::from_unix(now.saturating_sub(86_400)).map(day) else {
            return;
        };
        let recent = |k: &String| k.get(..10).is_some_and(|d| d >= cutoff.as_str());
        self.treaty_day.retain(|k, _| recent(k));
        let oldest = fill_slot(now) - (FILL_SLOTS - 1) * FILL_SLOT_SECONDS;
        self.fill.retain(|k, _| {
            k.split_once('/')
                .and_then(|(s, _)| s.parse::<i64>().ok())
                .is_some_and(|s| s >= oldest)
        });
        self.federation_day.retain(|k, _| recent(k));
        self.requester_day.retain(|k, _| recent(k));
    }

    fn release_hold(&mut self, h: &Hold) {
        self.count_hold(h, false);
    }

    fn add_hold(&mut self, h: &Hold) {
        self.count_hold(h, true);
    }

    /// Adds a hold to its day's counters (the treaty's and the federation's GPU hours, the
    /// requester's credits), or takes it off them.
    fn count_hold(&mut self, h: &Hold, add: bool) {
        let count = |m: &mut BTreeMap<String, u64>, k: String, v: u64| {
            let x = m.entry(k).or_default();
            *x = if add {
                x.saturating_add(v)
            } else {
                x.saturating_sub(v)
            };
        };
        let (treaty, requester) = (
            format!("{}/{}", h.day, h.treaty_id),
            format!("{}/{}", h.day, h.requester),
        );
        count(&mut self.treaty_day, treaty, h.gpu_milli_hours);
        count(&mut self.federation_day, h.day.clone(), h.gpu_milli_hours);
        count(&mut self.requester_day, requester, h.credits);
    }

    /// The usage an order for `treaty` by `requester` is judged against, on `today`.
    pub fn usage(&self, treaty: &str, requester: &str, today: &str) -> Usage {
        let (mut tc, mut fc) = (0, 0);
        for r in self.reservations.values() {
            fc += 1;
            if r.hold.treaty_id == treaty {
                tc += 1;
            }
        }
        Usage {
            store_birth: self.birth,
            treaty_gpu_milli_hours_today: self
                .treaty_day
                .get(&format!("{today}/{treaty}"))
                .copied()
                .unwrap_or(0),
            treaty_concurrent_jobs: tc,
            federation_gpu_milli_hours_today: self.federation_day.get(today).copied().unwrap_or(0),
            federation_concurrent_jobs: fc,
            requester_credits_today: self
                .requester_day
                .get(&format!("{today}/{requester}"))
                .copied()
                .unwrap_or(0),
        }
    }

    /// Whether `t` is too far behind this store's latest change to act at.
    fn behind(&self, t: i64) -> bool {
        t.saturating_add(CLOCK_TOLERANCE) < self.high_water
    }

    /// The decision step every store runs inside its transaction. Only a first decision
    /// changes the state (and is journaled); a repeat, a replay, a taken order id or a clock
    /// behind change nothing.
    pub fn decide(
        &mut self,
        facts: &OrderFacts,
        now: Instant,
        timing: Timing,
        judge: &mut dyn FnMut(&Usage) -> Judged,
    ) -> Recorded {
        let t = now.unix();
        if self.behind(t) {
            return Recorded::ClockBehind {
                high_water: self.high_water,
            };
        }
        let digest = hex::encode(facts.digest);
        // Looked up before any sweep: a record past its time still answers (a replay of a
        // long-void order is refused as a replay, which is also true).
        if let Some(n) = self.nonces.get(&nonce_id(&facts.key)) {
            if n.digest == digest {
                if let Some(d) = self.decisions.get(&n.order_id) {
                    return Recorded::Repeat(d.clone());
                }
            }
            return Recorded::Replayed {
                original_order: n.order_id.clone(),
            };
        }
        let h = &facts.hold;
        if self.decisions.contains_key(&h.order_id) {
            return Recorded::OrderIdTaken;
        }
        self.sweep(t);
        let decision = judge(&self.usage(&h.treaty_id, &h.requester, &h.day)).decision;
        self.high_water = self.high_water.max(t);
        let record = NonceRecord {
            digest,
            order_id: h.order_id.clone(),
            forget_after: facts.forget_after,
        };
        if let Some(x) = self.index.as_mut() {
            x.nonces.insert((forget_at(&record), nonce_id(&facts.key)));
        }
        self.nonces.insert(nonce_id(&facts.key), record);
        self.decisions.insert(h.order_id.clone(), decision.clone());
        if decision.allowed {
            self.add_hold(h);
            self.counters
                .entry(h.treaty_id.clone())
                .or_default()
                .allowed += 1;
            let until = t.saturating_add_unsigned(timing.reservation_ttl_seconds);
            self.reservations.insert(
                res_id(&h.treaty_id, &h.order_id),
                Reservation {
                    hold: h.clone(),
                    phase: Phase::Reserved { until },
                },
            );
        }
        Recorded::First(decision)
    }

    /// The ACK step every store runs inside its transaction. Only an applied ACK changes the
    /// state (and is journaled); a refusal or a repeat changes nothing.
    pub fn ack(
        &mut self,
        a: &AckFacts,
        now: Instant,
        timing: Timing,
    ) -> Result<AckOutcome, AckRefusal> {
        let t = now.unix();
        if self.behind(t) {
            return Err(AckRefusal::ClockBehind {
                high_water: self.high_water,
            });
        }
        let order_id = || a.order_id.to_owned();
        let id = res_id(a.treaty_id, a.order_id);
        let Some(r) = self.reservations.get(&id).cloned() else {
            return self.ack_without_reservation(a);
        };
        if r.hold.order_sha256 != a.order_sha256 {
            return Err(AckRefusal::OtherOrder {
                order_id: order_id(),
            });
        }
        let outcome = match (r.phase, a.status) {
            (Phase::Reserved { until }, _) if t > until => {
                return Err(AckRefusal::ReservationExpired {
                    order_id: order_id(),
                })
            }
            (Phase::Running { until }, _) if t > until => {
                return Err(AckRefusal::JobTimedOut {
                    order_id: order_id(),
                })
            }
            (Phase::Reserved { .. }, AckStatus::Accepted) => {
                let limit = r.hold.max_job_seconds.min(timing.max_job_seconds);
                let until = t.saturating_add_unsigned(limit);
                if let Some(x) = self.reservations.get_mut(&id) {
                    x.phase = Phase::Running { until };
                }
                self.counters
                    .entry(a.treaty_id.into())
                    .or_default()
                    .acks_accepted += 1;
                self.count_fill(a.treaty_id, t, true);
                AckOutcome::Running
            }
            (Phase::Reserved { .. }, AckStatus::Rejected) => {
                self.reservations.remove(&id);
                self.released(a.order_id);
                self.release_hold(&r.hold);
                self.count_fill(a.treaty_id, t, false);
                AckOutcome::Released
            }
            (Phase::Reserved { .. }, _) => {
                return Err(AckRefusal::NotRunning {
                    order_id: order_id(),
                })
            }
            (Phase::Running { .. }, AckStatus::Accepted) => return Ok(AckOutcome::Repeat),
            (Phase::Running { .. }, AckStatus::Rejected) => {
                return Err(AckRefusal::AlreadyAccepted {
                    order_id: order_id(),
                })
            }
            (Phase::Running { .. }, _) => {
                self.reservations.remove(&id);
                self.released(a.order_id);
                // True up the day's counters: what was held, replaced by what was used — at
                // most what was held (the law allowed that much; a provider reporting more
                // cannot spend the federation's quota).
                let h = &r.hold;
                let used = a
                    .used_gpu_milli_hours
                    .unwrap_or(h.gpu_milli_hours)
                    .min(h.gpu_milli_hours);
                for (m, k) in [
                    (&mut self.treaty_day, format!("{}/{}", h.day, h.treaty_id)),
                    (&mut self.federation_day, h.day.clone()),
                ] {
                    let x = m.entry(k).or_default();
                    *x = x.saturating_sub(h.gpu_milli_hours).saturating_add(used);
                }
                self.ended.insert(
                    h.order_id.clone(),
                    Ended {
                        order_sha256: h.order_sha256.clone(),
                        timed_out: false,
                    },
                );
                AckOutcome::Ended
            }
        };
        // Applied: this change is journaled with its time, and sweeps as every change does.
        self.sweep(t);
        self.high_water = self.high_water.max(t);
        Ok(outcome)
    }

    /// An ACK for an order with no live reservation: a repeated completion of a job that ended
    /// here, or a refusal (expired, rejected, never allowed, or unknown).
    fn ack_without_reservation(&self, a: &AckFacts) -> Result<AckOutcome, AckRefusal> {
        let order_id = || a.order_id.to_owned();
        let known = self
            .decisions
            .get(a.order_id)
            .is_some_and(|d| d.allowed && d.treaty_id == a.treaty_id);
        if !known {
            return Err(AckRefusal::UnknownOrder {
                treaty_id: a.treaty_id.into(),
                order_id: order_id(),
            });
        }
        match self.ended.get(a.order_id) {
            Some(e) if e.order_sha256 != a.order_sha256 => Err(AckRefusal::OtherOrder {
                order_id: order_id(),
            }),
            Some(e) if e.timed_out => Err(AckRefusal::JobTimedOut {
                order_id: order_id(),
            }),
            Some(_) if a.status.ends_job() => Ok(AckOutcome::Repeat),
            Some(_) => Err(AckRefusal::AlreadyAccepted {
                order_id: order_id(),
            }),
            None => Err(AckRefusal::ReservationExpired {
                order_id: order_id(),
            }),
        }
    }

    /// The decision recorded for exactly this message (see [`LawStore::recorded`]).
    pub fn recorded(&self, key: &NonceKey, digest: &[u8; 32]) -> Option<Decision> {
        let n = self.nonces.get(&nonce_id(key))?;
        (n.digest == hex::encode(digest))
            .then(|| self.decisions.get(&n.order_id).cloned())
            .flatten()
    }

    /// What the state holds at `now` (operators' `stats`), read-only: reservations and jobs
    /// past their time are not counted (the next change sweeps them).
    pub fn stats(&self, now: Instant) -> StateStats {
        let (mut reserved, mut running) = (0, 0);
        let t = now.unix();
        for r in self.reservations.values() {
            match r.phase {
                Phase::Reserved { until } if t <= until => reserved += 1,
                Phase::Running { until } if t <= until => running += 1,
                _ => {}
            }
        }
        StateStats {
            birth: self.birth,
            high_water: self.high_water,
            seq: self.seq,
            nonces: self.nonces.len() as u64,
            decisions: self.decisions.len() as u64,
            reserved,
            running,
            partial: false,
        }
    }

    /// The state an operator's clear leaves: empty, born after the old one (see
    /// [`birth_after_clear`]), its clock's high-water mark and sequence number kept.
    pub fn cleared(&self, now: Instant) -> State {
        let birth = birth_after_clear(now.unix(), self.birth, self.high_water);
        State {
            birth,
            high_water: self.high_water.max(birth),
            seq: self.seq,
            ..State::default()
        }
    }

    /// A treaty's usage at `now`, read-only: as the next change would see it after sweeping
    /// (expired reservations released, jobs past their deadline closed), without changing the
    /// state (a read is never journaled).
    pub fn treaty_usage(&self, treaty: &str, now: Instant) -> TreatyUsage {
        let c = self.counters.get(treaty).copied().unwrap_or_default();
        let t = now.unix();
        let today = day(now);
        let mut gpu = self
            .treaty_day
            .get(&format!("{today}/{treaty}"))
            .copied()
            .unwrap_or(0);
        let (mut reserved, mut running, mut expired, mut timed_out) = (0, 0, 0, 0);
        for r in self
            .reservations
            .values()
            .filter(|r| r.hold.treaty_id == treaty)
        {
            match r.phase {
                Phase::Reserved { until } if t <= until => reserved += 1,
                Phase::Running { until } if t <= until => running += 1,
                Phase::Reserved { .. } => {
                    expired += 1;
                    if r.hold.day == today {
                        gpu = gpu.saturating_sub(r.hold.gpu_milli_hours);
                    }
                }
                Phase::Running { .. } => timed_out += 1,
            }
        }
        TreatyUsage {
            gpu_milli_hours_today: gpu,
            reserved,
            running,
            reservations_expired: c.reservations_expired + expired,
            jobs_timed_out: c.jobs_timed_out + timed_out,
            acks_accepted: c.acks_accepted,
            allowed: c.allowed,
        }
    }
}

/// The state in memory only: for tests, benchmarks and `treaty order check`'s dry runs.
/// A process restart forgets everything (its birth moves, so old orders are `state-too-new`).
#[derive(Debug)]
pub struct MemStore {
    state: Mutex<State>,
}

impl MemStore {
    pub fn new(birth: Instant) -> MemStore {
        MemStore {
            state: Mutex::new(State::new(birth)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StoreError> {
        let mut s = self.state.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(f(&mut s))
    }
}

impl LawStore for MemStore {
    fn birth(&self) -> Instant {
        self.with(|s| Instant::from_unix(s.birth))
            .ok()
            .flatten()
            .unwrap_or(Instant::MAX)
    }

    fn high_water(&self) -> Instant {
        self.with(|s| Instant::from_unix(s.high_water))
            .ok()
            .flatten()
            .unwrap_or(Instant::MAX)
    }

    fn decide(
        &self,
        facts: &OrderFacts,
        now: Instant,
        timing: Timing,
        judge: &mut dyn FnMut(&Usage) -> Judged,
    ) -> Result<Recorded, StoreError> {
        self.with(|s| s.decide(facts, now, timing, judge))
    }

    fn ack(
        &self,
        ack: &AckFacts,
        now: Instant,
        timing: Timing,
    ) -> Result<Result<AckOutcome, AckRefusal>, StoreError> {
        self.with(|s| s.ack(ack, now, timing))
    }

    fn recorded(&self, key: &NonceKey, digest: &[u8; 32]) -> Result<Option<Decision>, StoreError> {
        self.with(|s| s.recorded(key, digest))
    }

    fn order(&self, order_id: &str) -> Result<Option<Decision>, StoreError> {
        self.with(|s| s.decisions.get(order_id).cloned())
    }

    fn usage(&self, treaty_id: &str, now: Instant) -> Result<TreatyUsage, StoreError> {
        self.with(|s| s.treaty_usage(treaty_id, now))
    }

    fn fill(&self, treaty_id: &str, now: Instant) -> Result<Fill, StoreError> {
        self.with(|s| s.fill_at(treaty_id, now))
    }

    fn stats(&self, now: Instant) -> Result<StateStats, StoreError> {
        self.with(|s| s.stats(now))
    }

    fn clear(&self, now: Instant) -> Result<Instant, StoreError> {
        self.with(|s| {
            *s = s.cleared(now);
            Instant::from_unix(s.birth).unwrap_or(Instant::MAX)
        })
    }
}

/// A shared store (the agent swaps the law it decides under, never the store).
impl<T: LawStore + ?Sized> LawStore for std::sync::Arc<T> {
    fn birth(&self) -> Instant {
        (**self).birth()
    }

    fn high_water(&self) -> Instant {
        (**self).high_water()
    }

    fn decide(
        &self,
        facts: &OrderFacts,
        now: Instant,
        timing: Timing,
        judge: &mut dyn FnMut(&Usage) -> Judged,
    ) -> Result<Recorded, StoreError> {
        (**self).decide(facts, now, timing, judge)
    }

    fn ack(
        &self,
        ack: &AckFacts,
        now: Instant,
        timing: Timing,
    ) -> Result<Result<AckOutcome, AckRefusal>, StoreError> {
        (**self).ack(ack, now, timing)
    }

    fn recorded(&self, key: &NonceKey, digest: &[u8; 32]) -> Result<Option<Decision>, StoreError> {
        (**self).recorded(key, digest)
    }

    fn order(&self, order_id: &str) -> Result<Option<Decision>, StoreError> {
        (**self).order(order_id)
    }

    fn healthy(&self) -> Result<(), String> {
        (**self).healthy()
    }

    fn usage(&self, treaty_id: &str, now: Instant) -> Result<TreatyUsage, StoreError> {
        (**self).usage(treaty_id, now)
    }

    fn fill(&self, treaty_id: &str, now: Instant) -> Result<Fill, StoreError> {
        (**self).fill(treaty_id, now)
    }

    fn stats(&self, now: Instant) -> Result<StateStats, StoreError> {
        (**self).stats(now)
    }

    fn clear(&self, now: Instant) -> Result<Instant, StoreError> {
        (**self).clear(now)
    }
}

/// Counters by key, for tests that compare two stores.
pub type Counters = HashMap<String, u64>;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl State {
        /// The sweep by its definition: every kept record walked, a decision kept while its
        /// nonce or its reservation is.
        pub(super) fn sweep_by_walking(&mut self, now: i64) {
            if now <= self.last_sweep {
                return;
            }
            self.last_sweep = now;
            // Reservations are walked in both; the definition differs in what it keeps.
            self.expire_reservations(now);
            self.nonces.retain(|_, n| forget_at(n) >= now);
            let live: BTreeSet<String> = self
                .nonces
                .values()
                .map(|n| n.order_id.clone())
                .chain(self.reservations.values().map(|r| r.hold.order_id.clone()))
                .collect();
            self.decisions.retain(|id, _| live.contains(id));
            self.ended.retain(|id, _| live.contains(id));
            self.prune_days(now);
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Advance the clock by this many seconds, then decide an order with a nonce from a
        /// small pool (so replays happen), valid for `life` seconds.
        Decide {
            step: u16,
            nonce: u8,
            order: u8,
            life: u16,
            allow: bool,
        },
        /// Advance, then ACK an order with a status.
        Ack { step: u16, order: u8, status: u8 },
        /// Throw the index away, as a load from a snapshot does.
        Reload,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..40, 0u8..12, 0u8..8, prop_oneof![1u16..60, 1u16..1_500], any::<bool>())
                .prop_map(|(step, nonce, order, life, allow)| Op::Decide {
                    step, nonce, order, life, allow
                }),
            4 => (0u16..40, 0u8..8, 0u8..4)
                .prop_map(|(step, order, status)| Op::Ack { step, order, status }),
            1 => Just(Op::Reload),
        ]
    }

    fn decision(order: &str, allowed: bool) -> Decision {
        Decision {
            order_id: order.into(),
            treaty_id: "T".into(),
            requester: "r".into(),
            allowed,
            denials: vec![],
            decided_at: String::new(),
            commit: String::new(),
            root_version: 1,
            snapshot_version: None,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The indexed sweep keeps and forgets exactly what the walk does, whatever the
        /// sequence of decisions, ACKs, clock steps and reloads (days included: the clock
        /// crosses several).
        #[test]
        fn the_indexed_sweep_equals_the_walk(ops in proptest::collection::vec(op(), 1..160)) {
            let t0 = 1_900_000_000i64;
            let birth = Instant::from_unix(t0).expect("time");
            let mut fast = State::new(birth);
            let mut walk = State::new(birth);
            walk.walk = true;
            let timing = Timing { reservation_ttl_seconds: 120, max_job_seconds: 900 };
            let mut t = t0;
            for op in ops {
                match op {
                    Op::Decide { step, nonce, order, life, allow } => {
                        t += i64::from(step) * 7;
                        let now = Instant::from_unix(t).expect("time");
                        let id = format!("o{order}");
                        let facts = OrderFacts {
                            key: NonceKey { keyid: "k".into(), nonce: format!("n{nonce}") },
                            digest: [order; 32],
                            hold: Hold {
                                order_id: id.clone(),
                                treaty_id: "T".into(),
                                requester: "r".into(),
                                gpu_milli_hours: 10,
                                credits: 1,
                                day: day(now),
                                order_sha256: hex::encode([order; 32]),
                                max_job_seconds: 600,
                            },
                            forget_after: t + i64::from(life),
                        };
                        let a = fast.decide(&facts, now, timing, &mut |_| Judged::regardless(decision(&id, allow)));
                        let b = walk.decide(&facts, now, timing, &mut |_| Judged::regardless(decision(&id, allow)));
                        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
                    }
                    Op::Ack { step, order, status } => {
                        t += i64::from(step) * 5;
                        let now = Instant::from_unix(t).expect("time");
                        let id = format!("o{order}");
                        let sha = hex::encode([order; 32]);
                        let status = match status {
                            0 => AckStatus::Accepted,
                            1 => AckStatus::Rejected,
                            2 => AckStatus::Completed,
                            _ => AckStatus::Failed,
                        };
                        let facts = AckFacts {
                            treaty_id: "T",
                            order_id: &id,
                            order_sha256: &sha,
                            status,
                            used_gpu_milli_hours: Some(5),
                        };
                        let a = fast.ack(&facts, now, timing);
                        let b = walk.ack(&facts, now, timing);
                        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
                    }
                    Op::Reload => fast.index = None,
                }
                let (x, y) = (
                    serde_json::to_string(&fast).expect("json"),
                    serde_json::to_string(&walk).expect("json"),
                );
                prop_assert_eq!(x, y);
            }
        }
    }
}
