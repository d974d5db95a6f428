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

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::time::Instant;

use super::decide::Usage;
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
}

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
        judge: &mut dyn FnMut(&Usage) -> Decision,
    ) -> Result<Recorded, StoreError>;
    /// Applies a provider's ACK or completion for an allowed order.
    fn ack(
        &self,
        treaty_id: &str,
        order_id: &str,
        status: AckStatus,
        used_gpu_milli_hours: Option<u64>,
        now: Instant,
        timing: Timing,
    ) -> Result<Result<AckOutcome, AckRefusal>, StoreError>;
    /// The decision recorded for an order id.
    fn order(&self, order_id: &str) -> Result<Option<Decision>, StoreError>;
    /// The usage of a treaty now (its requester-independent counters).
    fn usage(&self, treaty_id: &str, now: Instant) -> Result<TreatyUsage, StoreError>;
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
    /// deadline; forgets nonces whose orders can no longer be valid.
    pub fn sweep(&mut self, now: i64) {
        if now == self.last_sweep {
            return;
        }
        self.last_sweep = now;
        let mut expired = Vec::new();
        for (id, r) in &self.reservations {
            match r.phase {
                Phase::Reserved { until } if now > until => expired.push((id.clone(), false)),
                Phase::Running { until } if now > until => expired.push((id.clone(), true)),
                _ => {}
            }
        }
        for (id, timed_out) in expired {
            if let Some(r) = self.reservations.remove(&id) {
                let c = self.counters.entry(r.hold.treaty_id.clone()).or_default();
                if timed_out {
                    // A job that ran out its time keeps its GPU hours counted (they were held).
                    c.jobs_timed_out += 1;
                } else {
                    c.reservations_expired += 1;
                    self.release_hold(&r.hold);
                }
            }
        }
        self.nonces.retain(|_, n| n.forget_after >= now);
        // A decision is kept while its nonce is remembered or its order holds quota.
        let live: std::collections::BTreeSet<&str> = self
            .nonces
            .values()
            .map(|n| n.order_id.as_str())
            .chain(self.reservations.values().map(|r| r.hold.order_id.as_str()))
            .collect();
        let keep: std::collections::BTreeSet<String> =
            live.into_iter().map(str::to_owned).collect();
        self.decisions.retain(|id, _| keep.contains(id));
    }

    fn release_hold(&mut self, h: &Hold) {
        let sub = |m: &mut BTreeMap<String, u64>, k: String, v: u64| {
            if let Some(x) = m.get_mut(&k) {
                *x = x.saturating_sub(v);
            }
        };
        sub(
            &mut self.treaty_day,
            format!("{}/{}", h.day, h.treaty_id),
            h.gpu_milli_hours,
        );
        sub(&mut self.federation_day, h.day.clone(), h.gpu_milli_hours);
        sub(
            &mut self.requester_day,
            format!("{}/{}", h.day, h.requester),
            h.credits,
        );
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

    /// The decision step every store runs inside its transaction.
    pub fn decide(
        &mut self,
        facts: &OrderFacts,
        now: Instant,
        timing: Timing,
        judge: &mut dyn FnMut(&Usage) -> Decision,
    ) -> Recorded {
        let t = now.unix();
        self.sweep(t);
        let digest = hex::encode(facts.digest);
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
        let decision = judge(&self.usage(&h.treaty_id, &h.requester, &h.day));
        self.high_water = self.high_water.max(t);
        self.nonces.insert(
            nonce_id(&facts.key),
            NonceRecord {
                digest,
                order_id: h.order_id.clone(),
                forget_after: facts.forget_after,
            },
        );
        self.decisions.insert(h.order_id.clone(), decision.clone());
        if decision.allowed {
            *self
                .treaty_day
                .entry(format!("{}/{}", h.day, h.treaty_id))
                .or_default() += h.gpu_milli_hours;
            *self.federation_day.entry(h.day.clone()).or_default() += h.gpu_milli_hours;
            *self
                .requester_day
                .entry(format!("{}/{}", h.day, h.requester))
                .or_default() += h.credits;
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

    /// The ACK step every store runs inside its transaction.
    pub fn ack(
        &mut self,
        treaty_id: &str,
        order_id: &str,
        status: AckStatus,
        used: Option<u64>,
        now: Instant,
        timing: Timing,
    ) -> Result<AckOutcome, AckRefusal> {
        let t = now.unix();
        let id = res_id(treaty_id, order_id);
        // An ACK for a reservation that ran out is refused as such, not as unknown.
        let phase = self.reservations.get(&id).map(|r| r.phase);
        match (phase, status) {
            (Some(Phase::Reserved { until }), _) if t > until => {
                self.sweep(t);
                Err(AckRefusal::ReservationExpired {
                    order_id: order_id.into(),
                })
            }
            (Some(Phase::Reserved { .. }), AckStatus::Accepted) => {
                let until = t.saturating_add_unsigned(timing.max_job_seconds);
                if let Some(r) = self.reservations.get_mut(&id) {
                    r.phase = Phase::Running { until };
                }
                self.counters
                    .entry(treaty_id.into())
                    .or_default()
                    .acks_accepted += 1;
                Ok(AckOutcome::Running)
            }
            (Some(Phase::Reserved { .. }), AckStatus::Rejected) => {
                if let Some(r) = self.reservations.remove(&id) {
                    self.release_hold(&r.hold);
                }
                Ok(AckOutcome::Released)
            }
            (Some(Phase::Reserved { .. }), _) => Err(AckRefusal::NotRunning {
                order_id: order_id.into(),
            }),
            (Some(Phase::Running { .. }), AckStatus::Accepted) => Ok(AckOutcome::Repeat),
            (Some(Phase::Running { .. }), AckStatus::Rejected) => {
                Err(AckRefusal::AlreadyAccepted {
                    order_id: order_id.into(),
                })
            }
            (Some(Phase::Running { .. }), _) => {
                if let Some(r) = self.reservations.remove(&id) {
                    // True up the day's counters: what was held, replaced by what was used.
                    let used = used.unwrap_or(r.hold.gpu_milli_hours);
                    let h = &r.hold;
                    for (m, k) in [
                        (&mut self.treaty_day, format!("{}/{}", h.day, h.treaty_id)),
                        (&mut self.federation_day, h.day.clone()),
                    ] {
                        let x = m.entry(k).or_default();
                        *x = x.saturating_sub(h.gpu_milli_hours).saturating_add(used);
                    }
                }
                Ok(AckOutcome::Ended)
            }
            (None, _) => {
                let known = self
                    .decisions
                    .get(order_id)
                    .is_some_and(|d| d.allowed && d.treaty_id == treaty_id);
                if known && status.ends_job() {
                    // Ended before (or closed as timed out): the same completion again.
                    Ok(AckOutcome::Repeat)
                } else if known {
                    Err(AckRefusal::ReservationExpired {
                        order_id: order_id.into(),
                    })
                } else {
                    Err(AckRefusal::UnknownOrder {
                        treaty_id: treaty_id.into(),
                        order_id: order_id.into(),
                    })
                }
            }
        }
    }

    pub fn treaty_usage(&self, treaty: &str, now: Instant) -> TreatyUsage {
        let c = self.counters.get(treaty).copied().unwrap_or_default();
        let t = now.unix();
        let (mut reserved, mut running) = (0, 0);
        for r in self
            .reservations
            .values()
            .filter(|r| r.hold.treaty_id == treaty)
        {
            match r.phase {
                Phase::Reserved { until } if t <= until => reserved += 1,
                Phase::Running { until } if t <= until => running += 1,
                _ => {}
            }
        }
        TreatyUsage {
            gpu_milli_hours_today: self
                .treaty_day
                .get(&format!("{}/{treaty}", day(now)))
                .copied()
                .unwrap_or(0),
            reserved,
            running,
            reservations_expired: c.reservations_expired,
            jobs_timed_out: c.jobs_timed_out,
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
        judge: &mut dyn FnMut(&Usage) -> Decision,
    ) -> Result<Recorded, StoreError> {
        self.with(|s| s.decide(facts, now, timing, judge))
    }

    fn ack(
        &self,
        treaty_id: &str,
        order_id: &str,
        status: AckStatus,
        used: Option<u64>,
        now: Instant,
        timing: Timing,
    ) -> Result<Result<AckOutcome, AckRefusal>, StoreError> {
        self.with(|s| s.ack(treaty_id, order_id, status, used, now, timing))
    }

    fn order(&self, order_id: &str) -> Result<Option<Decision>, StoreError> {
        self.with(|s| s.decisions.get(order_id).cloned())
    }

    fn usage(&self, treaty_id: &str, now: Instant) -> Result<TreatyUsage, StoreError> {
        self.with(|s| s.treaty_usage(treaty_id, now))
    }
}

/// Counters by key, for tests that compare two stores.
pub type Counters = HashMap<String, u64>;
