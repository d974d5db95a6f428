//! The decision on one order (docs/law.md § The decision): the approved treaties and policies
//! compiled once into a [`Law`], and [`decide`], a pure function of the law, the order, its
//! signer, its reputation attestation, the usage so far and the time.
//!
//! Owns every constraint an order must meet and its stable denial code; the answer lists
//! **every** failed constraint with the numbers involved (asked, allowed, remaining). Allow is
//! never a default: an order is allowed only when the list is empty. Nonces, reservations and
//! usage are the store's ([`super::store`]); signatures are [`super::signed`]'s.
//!
//! Scopes (docs/law.md § Limits and their scope): a treaty's `quotas` are per treaty (all
//! requesters together); a policy's `constraints.quota` is federation-wide (all treaties
//! together); a policy's `max_daily_volume` is per requester (credits a day), so one requester
//! cannot spend the federation's volume. Days are UTC days of the decision time. Where several
//! policies set a limit the strictest wins; the replay window is the longest any of the treaty
//! and the policies set.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::time::Instant;

use super::message::{Attestation, Order};
use super::signed::{SignatureProblem, Signer};

/// Every reason an order can be denied, with its stable code (docs/law.md § Denial codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    OrderMalformed,
    OrderSignerUnknown,
    OrderSignatureInvalid,
    StateStale,
    StateTooNew,
    ClockBehind,
    Replayed,
    OrderIdReused,
    IssuedInFuture,
    OrderExpired,
    OrderOutlivesNonce,
    TreatyUnknown,
    TreatyInactive,
    TreatyNotYetValid,
    TreatyExpired,
    TreatyNotAllowlisted,
    PolicyNotValid,
    RegionNotAllowed,
    ReputationUnattested,
    AttestationInvalid,
    AttestationSignerUnknown,
    AttestationWrongSubject,
    AttestationNotYetValid,
    AttestationExpired,
    AttestationTooOld,
    ReputationTooLow,
    CreditsOverOrderLimit,
    GpuHoursOverDailyQuota,
    FederationGpuHoursOverDailyQuota,
    ConcurrentJobsOverQuota,
    FederationConcurrentJobsOverQuota,
    VolumeOverDailyLimit,
    /// The treaty's provider breached its fill-rate SLO over the KPI window.
    ProviderUnhealthy,
    /// The Rego rules could not be evaluated (an error, a budget overrun, a malformed answer):
    /// fail closed.
    RegoError,
}

impl Code {
    /// The stable kebab-case code.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::OrderMalformed => "order-malformed",
            Code::OrderSignerUnknown => "order-signer-unknown",
            Code::OrderSignatureInvalid => "order-signature-invalid",
            Code::StateStale => "state-stale",
            Code::StateTooNew => "state-too-new",
            Code::RegoError => "rego-error",
            Code::ClockBehind => "clock-behind",
            Code::Replayed => "replayed",
            Code::OrderIdReused => "order-id-reused",
            Code::IssuedInFuture => "issued-in-future",
            Code::OrderExpired => "order-expired",
            Code::OrderOutlivesNonce => "order-outlives-nonce",
            Code::TreatyUnknown => "treaty-unknown",
            Code::TreatyInactive => "treaty-inactive",
            Code::TreatyNotYetValid => "treaty-not-yet-valid",
            Code::TreatyExpired => "treaty-expired",
            Code::TreatyNotAllowlisted => "treaty-not-allowlisted",
            Code::PolicyNotValid => "policy-not-valid",
            Code::RegionNotAllowed => "region-not-allowed",
            Code::ReputationUnattested => "reputation-unattested",
            Code::AttestationInvalid => "attestation-invalid",
            Code::AttestationSignerUnknown => "attestation-signer-unknown",
            Code::AttestationWrongSubject => "attestation-wrong-subject",
            Code::AttestationNotYetValid => "attestation-not-yet-valid",
            Code::AttestationExpired => "attestation-expired",
            Code::AttestationTooOld => "attestation-too-old",
            Code::ReputationTooLow => "reputation-too-low",
            Code::CreditsOverOrderLimit => "credits-over-order-limit",
            Code::GpuHoursOverDailyQuota => "gpu-hours-over-daily-quota",
            Code::FederationGpuHoursOverDailyQuota => "federation-gpu-hours-over-daily-quota",
            Code::ConcurrentJobsOverQuota => "concurrent-jobs-over-quota",
            Code::FederationConcurrentJobsOverQuota => "federation-concurrent-jobs-over-quota",
            Code::VolumeOverDailyLimit => "volume-over-daily-limit",
            Code::ProviderUnhealthy => "provider-unhealthy",
        }
    }
}

/// One failed constraint, with the numbers involved where there are numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub code: Code,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
}

impl Denial {
    pub fn new(code: Code, message: impl Into<String>) -> Denial {
        Denial {
            code,
            message: message.into(),
            asked: None,
            allowed: None,
            remaining: None,
        }
    }

    fn numbers(mut self, asked: u64, allowed: u64, remaining: Option<u64>) -> Denial {
        self.asked = Some(asked);
        self.allowed = Some(allowed);
        self.remaining = remaining;
        self
    }
}

/// Which approved state decided: part of every answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Provenance {
    pub commit: String,
    pub root_version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_version: Option<u64>,
}

/// A treaty as the law enforces it. Quantities in the message units: milli-GPU-hours, credits,
/// basis points, seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreatyLaw {
    pub id: String,
    pub active: bool,
    pub status: String,
    /// The provider network: its pinned group signs this treaty's ACKs.
    pub network: String,
    pub regions: BTreeSet<String>,
    pub gpu_milli_hours_per_day: u64,
    pub concurrent_jobs: u64,
    pub credits_per_order: u64,
    pub min_reputation_bp: u32,
    pub nonce_ttl_seconds: u64,
    pub valid_from: Instant,
    pub expires: Instant,
    /// The treaty's SLO targets (`slos`), each as its approved JSON number's text: exported
    /// beside the measured value; `fill_rate_p95_min` is also the provider-health breaker of
    /// the decision (docs/law.md § Failover).
    pub slos: BTreeMap<String, String>,
    /// The treaties an order denied here for capacity or provider health may go to instead,
    /// in order (never this treaty itself: docs/law.md § Failover).
    pub failover: Vec<String>,
}

/// A policy as the law enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLaw {
    pub id: String,
    pub gpu_milli_hours_per_day: u64,
    pub concurrent_jobs: u64,
    pub regions: BTreeSet<String>,
    pub min_reputation_bp: u32,
    pub nonce_ttl_seconds: u64,
    pub not_before: Instant,
    pub not_after: Instant,
    pub allowlist: BTreeSet<String>,
    pub max_amount_per_order: u64,
    pub max_daily_volume: u64,
}

/// The operator's bounds on the law (flags and `agent.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Tolerated clock difference between signers and this agent, in seconds.
    pub skew_seconds: u64,
    /// The oldest attestation accepted, in seconds since its issue.
    pub attestation_max_age_seconds: u64,
    /// How long an allowed order's reservation waits for the provider's ACK.
    pub reservation_ttl_seconds: u64,
    /// The longest a job may run before it is closed `job-timed-out`.
    pub max_job_seconds: u64,
    /// The time budget of one evaluation of the Rego rules, in microseconds.
    pub rego_budget_micros: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            skew_seconds: 300,
            attestation_max_age_seconds: 86_400,
            reservation_ttl_seconds: 300,
            max_job_seconds: 86_400,
            rego_budget_micros: 5_000,
        }
    }
}

/// Everything an order is judged against: compiled once per applied state.
#[derive(Debug, Clone, Default)]
pub struct Law {
    pub provenance: Provenance,
    pub treaties: BTreeMap<String, TreatyLaw>,
    pub policies: Vec<PolicyLaw>,
    /// The approved `policies/*.rego` rules, compiled (docs/law.md § Rego), and the documents
    /// they read as input: each treaty by id, the policies in path order.
    pub rules: Option<std::sync::Arc<super::rego::Rules>>,
    pub treaty_docs: BTreeMap<String, serde_json::Value>,
    pub policy_docs: Vec<serde_json::Value>,
}

/// What the store counted so far (this UTC day, and now), for the order's treaty and signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    /// When the state these figures come from began (Unix seconds): the order is judged
    /// against this birth, read in the same step as the figures (a shared store may have been
    /// born again since the agent last looked).
    pub store_birth: i64,
    pub treaty_gpu_milli_hours_today: u64,
    pub treaty_concurrent_jobs: u64,
    pub federation_gpu_milli_hours_today: u64,
    pub federation_concurrent_jobs: u64,
    pub requester_credits_today: u64,
}

/// The most one usage figure may be for its quota check to pass: every quota check is
/// `used + asked > limit` (docs/law.md § The decision), so a decision is monotone in the usage —
/// allowed at some figures, allowed at any lower ones. A shared store commits a decision while
/// the figures are still on its side of the ceilings (docs/law.md § Scaling out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ceiling {
    /// No limit applies.
    Unlimited,
    /// Passes while the figure is at most this.
    AtMost(u64),
    /// Never passes (the order alone asks for more than the limit).
    Never,
}

impl Ceiling {
    fn of(limit: Option<u64>, asked: u64) -> Ceiling {
        match limit {
            None => Ceiling::Unlimited,
            Some(l) => l.checked_sub(asked).map_or(Ceiling::Never, Ceiling::AtMost),
        }
    }

    pub fn admits(self, used: u64) -> bool {
        match self {
            Ceiling::Unlimited => true,
            Ceiling::AtMost(c) => used <= c,
            Ceiling::Never => false,
        }
    }
}

/// An order's ceilings over the five figures of [`Usage`]: its quota checks all pass exactly
/// when [`Ceilings::admit`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ceilings {
    pub treaty_gpu_milli_hours_today: Ceiling,
    pub treaty_concurrent_jobs: Ceiling,
    pub federation_gpu_milli_hours_today: Ceiling,
    pub federation_concurrent_jobs: Ceiling,
    pub requester_credits_today: Ceiling,
}

impl Ceilings {
    /// Whether every quota check passes at `u`.
    pub fn admit(&self, u: &Usage) -> bool {
        self.treaty_gpu_milli_hours_today
            .admits(u.treaty_gpu_milli_hours_today)
            && self.treaty_concurrent_jobs.admits(u.treaty_concurrent_jobs)
            && self
                .federation_gpu_milli_hours_today
                .admits(u.federation_gpu_milli_hours_today)
            && self
                .federation_concurrent_jobs
                .admits(u.federation_concurrent_jobs)
            && self
                .requester_credits_today
                .admits(u.requester_credits_today)
    }
}

/// The ceilings of `order` under `law`: the same limits [`decide`] checks (the treaty's, and
/// the strictest policy's).
pub fn ceilings(law: &Law, order: &Order) -> Ceilings {
    let t = law.treaties.get(&order.treaty_id);
    let strictest = |f: fn(&PolicyLaw) -> u64| law.policies.iter().map(f).min();
    Ceilings {
        treaty_gpu_milli_hours_today: Ceiling::of(
            t.map(|t| t.gpu_milli_hours_per_day),
            order.gpu_milli_hours,
        ),
        treaty_concurrent_jobs: Ceiling::of(t.map(|t| t.concurrent_jobs), 1),
        federation_gpu_milli_hours_today: Ceiling::of(
            strictest(|p| p.gpu_milli_hours_per_day),
            order.gpu_milli_hours,
        ),
        federation_concurrent_jobs: Ceiling::of(strictest(|p| p.concurrent_jobs), 1),
        requester_credits_today: Ceiling::of(strictest(|p| p.max_daily_volume), order.credits),
    }
}

impl Code {
    /// The codes whose denial depends on the usage figures (and only on them): the quotas.
    pub fn is_quota(self) -> bool {
        matches!(
            self,
            Code::GpuHoursOverDailyQuota
                | Code::ConcurrentJobsOverQuota
                | Code::FederationGpuHoursOverDailyQuota
                | Code::FederationConcurrentJobsOverQuota
                | Code::VolumeOverDailyLimit
        )
    }
}

/// The reputation attestation an order carried, as checked: absent, not acceptable as signed,
/// or signed by a `reputation` key.
#[derive(Debug, Clone)]
pub enum Attested {
    Absent,
    Refused(SignatureProblem),
    Signed {
        attestation: Attestation,
        by: String,
    },
}

/// What [`decide`] judges.
#[derive(Debug, Clone)]
pub struct Case<'a> {
    pub order: &'a Order,
    pub signer: &'a Signer,
    pub attested: &'a Attested,
    pub usage: Usage,
    pub now: Instant,
}

/// Every constraint `case` fails (empty: allowed). Pure: the same inputs, the same list.
///
/// The order's own times ([`timing`]) are judged too, so the list is whole; the engine checks
/// them first and refuses such an order without consuming its nonce.
pub fn decide(law: &Law, bounds: &Bounds, case: &Case) -> Vec<Denial> {
    let mut out = timing(law, bounds, case.order, case.now);
    let treaty = law.treaties.get(&case.order.treaty_id);
    match treaty {
        None => out.push(Denial::new(
            Code::TreatyUnknown,
            format!("no approved treaty {:?}", case.order.treaty_id),
        )),
        Some(t) => treaty_denials(t, &ceilings(law, case.order), case, &mut out),
    }
    policy_denials(law, case, &mut out);
    reputation_denials(law, treaty, bounds, case, &mut out);
    amount_denials(law, treaty, case, &mut out);
    out
}

fn secs(d: i64) -> u64 {
    u64::try_from(d).unwrap_or(0)
}

/// The replay window: the longest any of the treaty and the policies set.
pub fn replay_window(law: &Law, treaty_id: &str) -> u64 {
    law.treaties
        .get(treaty_id)
        .map(|t| t.nonce_ttl_seconds)
        .into_iter()
        .chain(law.policies.iter().map(|p| p.nonce_ttl_seconds))
        .max()
        .unwrap_or(0)
}

/// The order's own times: issued no later than now plus the skew, not void (`not_after` plus
/// the skew), and no longer-lived than its nonce is remembered (the replay window less the
/// skew). An order failing these is a message that cannot be decided now, not a decision: it is
/// refused and changes no state (a future-dated order may be sent again when it is due).
pub fn timing(law: &Law, bounds: &Bounds, o: &Order, at: Instant) -> Vec<Denial> {
    let mut out = Vec::new();
    let (now, skew) = (at.unix(), bounds.skew_seconds);
    let (issued, not_after) = (o.issued().unix(), o.expires().unix());
    if issued > now.saturating_add_unsigned(skew) {
        out.push(
            Denial::new(
                Code::IssuedInFuture,
                format!("issued at {}, more than {skew} s after now", o.issued_at),
            )
            .numbers(secs(issued - now), skew, None),
        );
    }
    if now > not_after.saturating_add_unsigned(skew) {
        out.push(Denial::new(
            Code::OrderExpired,
            format!(
                "void after {} (judged at {})",
                o.not_after,
                crate::time::format(at)
            ),
        ));
    }
    let window = replay_window(law, &o.treaty_id);
    let lifetime = secs(not_after - issued);
    let longest = window.saturating_sub(skew);
    if lifetime > longest {
        out.push(
            Denial::new(
                Code::OrderOutlivesNonce,
                format!("the order lives {lifetime} s, longer than the replay window ({window} s) less the skew ({skew} s): its nonce would be forgotten while it is valid"),
            )
            .numbers(lifetime, longest, None),
        );
    }
    out
}

fn treaty_denials(t: &TreatyLaw, c: &Ceilings, case: &Case, out: &mut Vec<Denial>) {
    let now = case.now;
    if !t.active {
        out.push(Denial::new(
            Code::TreatyInactive,
            format!("treaty {} is {}, not active", t.id, t.status),
        ));
    }
    if now < t.valid_from {
        out.push(Denial::new(
            Code::TreatyNotYetValid,
            format!(
                "treaty {} is valid from {}",
                t.id,
                crate::time::format(t.valid_from)
            ),
        ));
    }
    if now >= t.expires {
        out.push(Denial::new(
            Code::TreatyExpired,
            format!(
                "treaty {} expired at {}",
                t.id,
                crate::time::format(t.expires)
            ),
        ));
    }
    if !t.regions.contains(&case.order.region) {
        out.push(Denial::new(
            Code::RegionNotAllowed,
            format!(
                "treaty {} allows regions [{}], not {:?}",
                t.id,
                t.regions.iter().cloned().collect::<Vec<_>>().join(", "),
                case.order.region
            ),
        ));
    }
    let u = &case.usage;
    let asked = case.order.gpu_milli_hours;
    let limit = t.gpu_milli_hours_per_day;
    // Each quota is judged by its ceiling: the one definition a shared store re-checks.
    if !c
        .treaty_gpu_milli_hours_today
        .admits(u.treaty_gpu_milli_hours_today)
    {
        out.push(
            Denial::new(
                Code::GpuHoursOverDailyQuota,
                format!(
                    "treaty {} has {} of {limit} milli-GPU-hours left today",
                    t.id,
                    limit.saturating_sub(u.treaty_gpu_milli_hours_today)
                ),
            )
            .numbers(
                asked,
                limit,
                Some(limit.saturating_sub(u.treaty_gpu_milli_hours_today)),
            ),
        );
    }
    if !c.treaty_concurrent_jobs.admits(u.treaty_concurrent_jobs) {
        out.push(
            Denial::new(
                Code::ConcurrentJobsOverQuota,
                format!(
                    "treaty {} runs {} of {} concurrent jobs",
                    t.id, u.treaty_concurrent_jobs, t.concurrent_jobs
                ),
            )
            .numbers(
                1,
                t.concurrent_jobs,
                Some(t.concurrent_jobs.saturating_sub(u.treaty_concurrent_jobs)),
            ),
        );
    }
}

fn policy_denials(law: &Law, case: &Case, out: &mut Vec<Denial>) {
    let (o, u, now) = (case.order, &case.usage, case.now);
    for p in &law.policies {
        if now < p.not_before || now >= p.not_after {
            out.push(Denial::new(
                Code::PolicyNotValid,
                format!(
                    "policy {} applies from {} until {}",
                    p.id,
                    crate::time::format(p.not_before),
                    crate::time::format(p.not_after)
                ),
            ));
        }
        if !p.allowlist.contains(&o.treaty_id) {
            out.push(Denial::new(
                Code::TreatyNotAllowlisted,
                format!(
                    "policy {} does not allowlist treaty {:?}",
                    p.id, o.treaty_id
                ),
            ));
        }
        if !p.regions.contains(&o.region) {
            out.push(Denial::new(
                Code::RegionNotAllowed,
                format!("policy {} does not allow region {:?}", p.id, o.region),
            ));
        }
    }
    // Federation-wide and per-requester limits: the strictest policy's.
    let c = ceilings(law, o);
    let strictest = |f: fn(&PolicyLaw) -> u64| law.policies.iter().map(f).min();
    if let Some(limit) = strictest(|p| p.gpu_milli_hours_per_day) {
        let used = u.federation_gpu_milli_hours_today;
        if !c.federation_gpu_milli_hours_today.admits(used) {
            out.push(
                Denial::new(
                    Code::FederationGpuHoursOverDailyQuota,
                    format!(
                        "the federation has {} of {limit} milli-GPU-hours left today",
                        limit.saturating_sub(used)
                    ),
                )
                .numbers(
                    o.gpu_milli_hours,
                    limit,
                    Some(limit.saturating_sub(used)),
                ),
            );
        }
    }
    if let Some(limit) = strictest(|p| p.concurrent_jobs) {
        let used = u.federation_concurrent_jobs;
        if !c.federation_concurrent_jobs.admits(used) {
            out.push(
                Denial::new(
                    Code::FederationConcurrentJobsOverQuota,
                    format!("the federation runs {used} of {limit} concurrent jobs"),
                )
                .numbers(1, limit, Some(limit.saturating_sub(used))),
            );
        }
    }
    if let Some(limit) = strictest(|p| p.max_daily_volume) {
        let used = u.requester_credits_today;
        if !c.requester_credits_today.admits(used) {
            out.push(
                Denial::new(
                    Code::VolumeOverDailyLimit,
                    format!(
                        "requester {:?} has {} of {limit} credits left today",
                        case.signer.member,
                        limit.saturating_sub(used)
                    ),
                )
                .numbers(o.credits, limit, Some(limit.saturating_sub(used))),
            );
        }
    }
}

fn reputation_denials(
    law: &Law,
    treaty: Option<&TreatyLaw>,
    bounds: &Bounds,
    case: &Case,
    out: &mut Vec<Denial>,
) {
    let min = treaty
        .map(|t| t.min_reputation_bp)
        .into_iter()
        .chain(law.policies.iter().map(|p| p.min_reputation_bp))
        .max()
        .unwrap_or(0);
    let (now, skew) = (case.now.unix(), bounds.skew_seconds);
    match case.attested {
        Attested::Absent => out.push(Denial::new(
            Code::ReputationUnattested,
            format!("the order carries no reputation attestation (at least {min} bp required)"),
        )),
        Attested::Refused(SignatureProblem::UnknownKey { keyid, .. }) => out.push(Denial::new(
            Code::AttestationSignerUnknown,
            format!("the attestation is signed by key {keyid}, which holds no reputation role"),
        )),
        Attested::Refused(p) => out.push(Denial::new(Code::AttestationInvalid, p.to_string())),
        Attested::Signed { attestation: a, by } => {
            if a.subject != case.signer.member {
                out.push(Denial::new(
                    Code::AttestationWrongSubject,
                    format!(
                        "the attestation by {by} is about {:?}, the order is signed by {:?}",
                        a.subject, case.signer.member
                    ),
                ));
            }
            let (issued, expires) = (a.issued().unix(), a.expires().unix());
            if issued > now.saturating_add_unsigned(skew) {
                out.push(Denial::new(
                    Code::AttestationNotYetValid,
                    format!(
                        "the attestation is issued at {}, in the future",
                        a.issued_at
                    ),
                ));
            }
            if now >= expires {
                out.push(Denial::new(
                    Code::AttestationExpired,
                    format!("the attestation expired at {}", a.expires),
                ));
            }
            let age = secs(now - issued);
            if age > bounds.attestation_max_age_seconds {
                out.push(
                    Denial::new(
                        Code::AttestationTooOld,
                        format!(
                            "the attestation is {age} s old; at most {} s accepted",
                            bounds.attestation_max_age_seconds
                        ),
                    )
                    .numbers(age, bounds.attestation_max_age_seconds, None),
                );
            }
            if a.score_bp < min {
                out.push(
                    Denial::new(
                        Code::ReputationTooLow,
                        format!(
                            "reputation {} bp is below the required {min} bp",
                            a.score_bp
                        ),
                    )
                    .numbers(u64::from(a.score_bp), u64::from(min), None),
                );
            }
        }
    }
}

fn amount_denials(law: &Law, treaty: Option<&TreatyLaw>, case: &Case, out: &mut Vec<Denial>) {
    let asked = case.order.credits;
    let limits = treaty
        .map(|t| (t.credits_per_order, format!("treaty {}", t.id)))
        .into_iter()
        .chain(
            law.policies
                .iter()
                .map(|p| (p.max_amount_per_order, format!("policy {}", p.id))),
        );
    if let Some((limit, by)) = limits.min_by_key(|(l, _)| *l) {
        if asked > limit {
            out.push(
                Denial::new(
                    Code::CreditsOverOrderLimit,
                    format!("{asked} credits asked; {by} allows at most {limit} per order"),
                )
                .numbers(asked, limit, None),
            );
        }
    }
}

#[cfg(test)]
mod ceiling_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A ceiling passes exactly where the quota's own statement does (`used + asked` within
        /// the limit), at the edges of u64 too.
        #[test]
        fn a_ceiling_is_the_quota_check(
            limit in prop_oneof![0..10u64, Just(u64::MAX), any::<u64>()],
            asked in prop_oneof![0..10u64, Just(u64::MAX), any::<u64>()],
            used in prop_oneof![0..10u64, Just(u64::MAX), any::<u64>()],
        ) {
            let statement = used.checked_add(asked).is_some_and(|x| x <= limit);
            prop_assert_eq!(Ceiling::of(Some(limit), asked).admits(used), statement);
            prop_assert!(Ceiling::of(None, asked).admits(used));
        }
    }
}
