//! The law's KPIs and SLOs on `/metrics` (docs/law.md § KPIs): decisions by outcome per
//! treaty, denials by reason, quota remaining, reservations expired, fill rate and provenance
//! coverage over a window, ACK round-trip time and decision latency, and each treaty's SLO
//! targets beside the measured value.
//!
//! Owns the bound on series: counters and gauges per treaty for at most `max_treaties`
//! treaties (the rest are counted under `treaty="_other"`), reasons fleet-wide (at most
//! [`MAX_REASONS`]), histograms fleet-wide. The window is [`SLOTS`] slots of [`SLOT_SECONDS`]
//! (one hour); a treaty keeps its slots only while it has traffic. These are measurements, not
//! state: a restart starts them again (the store's counters behind `quota remaining` and
//! `reservations expired` are durable).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;

use super::decide::Law;
use super::store::{AckOutcome, LawStore};
use crate::time::Instant;

/// One slot of the window, in seconds.
pub const SLOT_SECONDS: i64 = 300;
/// Slots in the window (12 × 5 min = 1 h).
pub const SLOTS: usize = 12;
/// Distinct denial reasons kept (the engine's codes are fewer; Rego codes beyond this are
/// counted as `rego-other`).
pub const MAX_REASONS: usize = 128;
/// Orders remembered for the ACK round trip (the oldest are dropped past it).
const MAX_PENDING: usize = 65_536;
/// Refusal reasons served from zero (the alert rules watch them).
const SEEDED_REFUSALS: [&str; 5] = [
    "replayed",
    "order-id-reused",
    "state-stale",
    "clock-behind",
    "store-unavailable",
];
/// The label of treaties past the series bound.
pub const OTHER: &str = "_other";

/// Histogram upper bounds, in seconds (decision latency and ACK round trip).
const BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += secs;
    }

    fn add(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.sum += o.sum;
    }

    fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The upper bound of the bucket holding quantile `q` (`None`: no observation; `+Inf` is
    /// reported as the largest bound).
    fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        // The rank of the q-quantile, 1-based, rounded up.
        let rank = ((q * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(
                    BUCKETS
                        .get(i)
                        .copied()
                        .unwrap_or(BUCKETS[BUCKETS.len() - 1]),
                );
            }
        }
        None
    }

    fn render(&self, o: &mut String, name: &str) {
        let mut cum = 0;
        for (b, c) in BUCKETS.iter().zip(self.counts) {
            cum += c;
            let _ = writeln!(o, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(
            o,
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
            self.count(),
            self.sum,
            self.count()
        );
    }
}

#[derive(Debug, Clone, Default)]
struct Slot {
    start: i64,
    allowed: u64,
    accepted: u64,
    /// ACKs of either kind (accepted or rejected): signed provider answers.
    answered: u64,
    rtt: Histogram,
    latency: Histogram,
}

#[derive(Debug, Default)]
struct TreatyKpi {
    allowed: u64,
    denied: u64,
    /// Denials that named a failover treaty (docs/law.md § Failover).
    failovers: u64,
    window: VecDeque<Slot>,
}

impl TreatyKpi {
    fn slot(&mut self, now: i64) -> &mut Slot {
        let start = now - now.rem_euclid(SLOT_SECONDS);
        if self.window.back().is_none_or(|s| s.start != start) {
            self.window.push_back(Slot {
                start,
                ..Slot::default()
            });
        }
        while self.window.len() > SLOTS {
            self.window.pop_front();
        }
        // Just pushed or matched: present.
        let n = self.window.len() - 1;
        &mut self.window[n]
    }

    fn windowed(&self, now: i64) -> Slot {
        let from = now - SLOT_SECONDS * SLOTS as i64;
        let mut w = Slot::default();
        for s in self.window.iter().filter(|s| s.start > from) {
            w.allowed += s.allowed;
            w.accepted += s.accepted;
            w.answered += s.answered;
            w.rtt.add(&s.rtt);
            w.latency.add(&s.latency);
        }
        w
    }
}

#[derive(Debug, Default)]
struct Inner {
    treaties: HashMap<String, TreatyKpi>,
    denials: BTreeMap<String, u64>,
    refused: BTreeMap<String, u64>,
    latency: Histogram,
    rtt: Histogram,
    /// Allowed orders awaiting their ACK: when they were allowed (monotonic clock) and their
    /// place in `pending_order`, which holds the same ids oldest first (both bounded together).
    pending: HashMap<String, (std::time::Instant, u64)>,
    pending_order: BTreeMap<u64, String>,
    pending_seq: u64,
}

/// The KPIs of one decision point.
#[derive(Debug)]
pub struct Kpis {
    inner: Mutex<Inner>,
    max_treaties: usize,
}

fn bounded_reason(m: &BTreeMap<String, u64>, code: &str) -> String {
    if m.contains_key(code) || m.len() < MAX_REASONS {
        code.to_owned()
    } else {
        "rego-other".to_owned()
    }
}

impl Kpis {
    pub fn new(max_treaties: usize) -> Kpis {
        Kpis {
            inner: Mutex::new(Inner::default()),
            max_treaties,
        }
    }

    /// The series label of `treaty`: its id while there is room, else [`OTHER`]; a treaty the
    /// law does not know (`None`) is always [`OTHER`], so signed orders naming made-up treaties
    /// cannot take the room of real ones.
    fn label<'a>(&self, i: &Inner, treaty: Option<&'a str>) -> &'a str {
        match treaty {
            Some(t) if i.treaties.contains_key(t) || i.treaties.len() < self.max_treaties => t,
            _ => OTHER,
        }
    }

    /// Records a decision on an order of `treaty` (`None`: not a treaty of the law in force)
    /// that took `took` (seconds).
    /// A denial that named a failover treaty.
    pub fn failed_over(&self, treaty: Option<&str>) {
        let Ok(mut i) = self.inner.lock() else { return };
        let label = self.label(&i, treaty).to_owned();
        i.treaties.entry(label).or_default().failovers += 1;
    }

    pub fn decided(
        &self,
        treaty: Option<&str>,
        order_id: &str,
        allowed: bool,
        codes: &[&str],
        took: f64,
        now: Instant,
    ) {
        let Ok(mut i) = self.inner.lock() else { return };
        let label = self.label(&i, treaty).to_owned();
        i.latency.observe(took);
        for c in codes {
            let k = bounded_reason(&i.denials, c);
            *i.denials.entry(k).or_default() += 1;
        }
        let t = i.treaties.entry(label).or_default();
        if allowed {
            t.allowed += 1;
        } else {
            t.denied += 1;
        }
        let s = t.slot(now.unix());
        s.latency.observe(took);
        if allowed {
            s.allowed += 1;
            while i.pending.len() >= MAX_PENDING {
                let Some((_, old)) = i.pending_order.pop_first() else {
                    break;
                };
                i.pending.remove(&old);
            }
            i.pending_seq += 1;
            let seq = i.pending_seq;
            if let Some((_, prev)) = i
                .pending
                .insert(order_id.to_owned(), (std::time::Instant::now(), seq))
            {
                i.pending_order.remove(&prev);
            }
            i.pending_order.insert(seq, order_id.to_owned());
        }
    }

    /// Records a message that was not decided (refused or unauthenticated), by its code.
    pub fn refused(&self, code: &str) {
        let Ok(mut i) = self.inner.lock() else { return };
        let k = bounded_reason(&i.refused, code);
        *i.refused.entry(k).or_default() += 1;
    }

    /// Records an applied ACK.
    pub fn acked(&self, treaty: &str, order_id: &str, outcome: AckOutcome, now: Instant) {
        let Ok(mut i) = self.inner.lock() else { return };
        let rtt = match outcome {
            AckOutcome::Running | AckOutcome::Released => {
                i.pending.remove(order_id).map(|(at, seq)| {
                    i.pending_order.remove(&seq);
                    at.elapsed().as_secs_f64()
                })
            }
            _ => None,
        };
        if let Some(r) = rtt {
            i.rtt.observe(r);
        }
        let label = self.label(&i, Some(treaty)).to_owned();
        let s = i.treaties.entry(label).or_default().slot(now.unix());
        match outcome {
            AckOutcome::Running => {
                s.accepted += 1;
                s.answered += 1;
            }
            AckOutcome::Released => s.answered += 1,
            AckOutcome::Ended | AckOutcome::Repeat => {}
        }
        if let Some(r) = rtt {
            s.rtt.observe(r);
        }
    }

    /// The exposition text: the KPIs at `now`, with the quota and SLO gauges of `law`'s
    /// treaties (the first `max_treaties` of them by id) read from `store`.
    pub fn render<S: LawStore + ?Sized>(
        &self,
        law: Option<&Law>,
        store: &S,
        now: Instant,
        receipts: Option<&super::receipts::Receipts>,
    ) -> String {
        let mut o = String::new();
        let Ok(i) = self.inner.lock() else { return o };
        let esc = |s: &str| {
            crate::text::escape(s)
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        };
        o.push_str("# HELP treaty_law_decisions_total Orders decided, by treaty and outcome.\n# TYPE treaty_law_decisions_total counter\n");
        let mut names: Vec<&String> = i.treaties.keys().collect();
        names.sort();
        for n in &names {
            let t = &i.treaties[*n];
            let _ = writeln!(
                o,
                "treaty_law_decisions_total{{treaty=\"{0}\",outcome=\"allowed\"}} {1}\ntreaty_law_decisions_total{{treaty=\"{0}\",outcome=\"denied\"}} {2}",
                esc(n),
                t.allowed,
                t.denied
            );
        }
        o.push_str("# HELP treaty_law_failovers_total Denials that named a failover treaty, by the denying treaty.\n# TYPE treaty_law_failovers_total counter\n");
        for n in &names {
            let _ = writeln!(
                o,
                "treaty_law_failovers_total{{treaty=\"{}\"}} {}",
                esc(n),
                i.treaties[*n].failovers
            );
        }
        o.push_str("# HELP treaty_law_denials_total Denials in decisions, by reason (fleet-wide).\n# TYPE treaty_law_denials_total counter\n");
        for (r, n) in &i.denials {
            let _ = writeln!(o, "treaty_law_denials_total{{reason=\"{}\"}} {n}", esc(r));
        }
        o.push_str("# HELP treaty_law_refused_total Messages not decided (unauthenticated, malformed, replayed, stale law …), by reason.\n# TYPE treaty_law_refused_total counter\n");
        // The reasons alerts watch are served from zero: a counter's first sample after it
        // appears is no increase to Prometheus, so the first replay would go unseen.
        let mut refused = i.refused.clone();
        for r in SEEDED_REFUSALS {
            refused.entry(r.to_owned()).or_default();
        }
        for (r, n) in &refused {
            let _ = writeln!(o, "treaty_law_refused_total{{reason=\"{}\"}} {n}", esc(r));
        }
        o.push_str("# HELP treaty_law_decision_duration_seconds Time to decide an order, from the request body read to the durable answer.\n# TYPE treaty_law_decision_duration_seconds histogram\n");
        i.latency
            .render(&mut o, "treaty_law_decision_duration_seconds");
        o.push_str("# HELP treaty_law_ack_rtt_seconds Time from an order allowed to its provider's ACK (accepted or rejected).\n# TYPE treaty_law_ack_rtt_seconds histogram\n");
        i.rtt.render(&mut o, "treaty_law_ack_rtt_seconds");
        if let Some(law) = law {
            self.render_law(&mut o, &i, law, store, now, receipts);
        }
        o
    }

    fn render_law<S: LawStore + ?Sized>(
        &self,
        o: &mut String,
        i: &Inner,
        law: &Law,
        store: &S,
        now: Instant,
        receipts: Option<&super::receipts::Receipts>,
    ) {
        let esc = |s: &str| {
            crate::text::escape(s)
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        };
        let mut quota = String::new();
        let mut expired = String::new();
        let mut target = String::new();
        let mut slo = String::new();
        for t in law.treaties.values().take(self.max_treaties) {
            let id = esc(&t.id);
            if let Ok(u) = store.usage(&t.id, now) {
                let _ = writeln!(
                    quota,
                    "treaty_law_quota_remaining{{treaty=\"{id}\",quota=\"gpu_milli_hours_today\"}} {}\ntreaty_law_quota_remaining{{treaty=\"{id}\",quota=\"concurrent_jobs\"}} {}",
                    t.gpu_milli_hours_per_day.saturating_sub(u.gpu_milli_hours_today),
                    t.concurrent_jobs.saturating_sub(u.reserved.saturating_add(u.running))
                );
                let _ = writeln!(
                    expired,
                    "treaty_law_reservations_expired_total{{treaty=\"{id}\"}} {}",
                    u.reservations_expired
                );
            }
            let w = i
                .treaties
                .get(&t.id)
                .map(|k| k.windowed(now.unix()))
                .unwrap_or_default();
            let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
            let measured = [
                ("fill_rate_p95_min", ratio(w.accepted, w.allowed)),
                // Jobs ended with a receipt under a signed checkpoint (absent without
                // receipts: nothing vouches for them).
                (
                    "provenance_coverage_min",
                    receipts.and_then(|r| r.coverage(&t.id, now)),
                ),
                ("rtt_p95_ms_max", w.rtt.quantile(0.95).map(|s| s * 1000.0)),
                (
                    "policy_decision_ms_p99_max",
                    w.latency.quantile(0.99).map(|s| s * 1000.0),
                ),
            ];
            for (name, m) in measured {
                if let Some(t_value) = t.slos.get(name) {
                    let _ = writeln!(
                        target,
                        "treaty_law_slo_target{{treaty=\"{id}\",slo=\"{name}\"}} {t}",
                        t = t_value
                    );
                }
                if let Some(m) = m {
                    let _ = writeln!(
                        slo,
                        "treaty_law_slo_measured{{treaty=\"{id}\",slo=\"{name}\"}} {m}"
                    );
                }
            }
        }
        o.push_str("# HELP treaty_law_quota_remaining What remains of a treaty's quota now (today's milli-GPU-hours; concurrent jobs).\n# TYPE treaty_law_quota_remaining gauge\n");
        o.push_str(&quota);
        o.push_str("# HELP treaty_law_reservations_expired_total Allowed orders whose provider never ACKed in time (since the state store began).\n# TYPE treaty_law_reservations_expired_total counter\n");
        o.push_str(&expired);
        o.push_str("# HELP treaty_law_slo_target A treaty's SLO as approved (docs/law.md § KPIs defines each statistic).\n# TYPE treaty_law_slo_target gauge\n");
        o.push_str(&target);
        o.push_str("# HELP treaty_law_slo_measured The SLO's statistic measured over the last hour (absent: no traffic).\n# TYPE treaty_law_slo_measured gauge\n");
        o.push_str(&slo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_bucket_bound_and_series_stay_bounded() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.95), None);
        for _ in 0..95 {
            h.observe(0.000_2);
        }
        for _ in 0..5 {
            h.observe(0.2);
        }
        assert_eq!(h.quantile(0.95), Some(0.000_25));
        assert_eq!(h.quantile(0.99), Some(0.25));

        let k = Kpis::new(2);
        let now = Instant::from_unix(1_900_000_000).expect("time");
        for n in 0..50 {
            k.decided(
                Some(&format!("T-{n}")),
                &format!("o-{n}"),
                n % 2 == 0,
                &["x"],
                0.001,
                now,
            );
        }
        let store = super::super::store::MemStore::new(now);
        let text = k.render(None, &store, now, None);
        let treaties: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.split("treaty=\"").nth(1))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert_eq!(treaties.len(), 3, "two treaties and {OTHER}: {treaties:?}");
        assert!(treaties.contains(OTHER));
    }

    /// Orders ACKed leave the round-trip table whole (both of its maps), a re-used id is
    /// tracked once, and a treaty the law does not know never takes a series of its own.
    #[test]
    fn the_round_trip_table_stays_bounded_and_unknown_treaties_are_other() {
        let k = Kpis::new(10);
        let now = Instant::from_unix(1_900_000_000).expect("time");
        for n in 0..1_000 {
            k.decided(Some("T"), &format!("o-{n}"), true, &[], 0.001, now);
            k.decided(Some("T"), &format!("o-{n}"), true, &[], 0.001, now);
            k.acked("T", &format!("o-{n}"), AckOutcome::Running, now);
        }
        {
            let i = k.inner.lock().expect("lock");
            assert!(i.pending.is_empty() && i.pending_order.is_empty());
        }
        k.decided(None, "x", false, &["treaty-unknown"], 0.001, now);
        let store = super::super::store::MemStore::new(now);
        let text = k.render(None, &store, now, None);
        assert!(
            text.contains("treaty=\"_other\",outcome=\"denied\"} 1"),
            "{text}"
        );
    }
}
