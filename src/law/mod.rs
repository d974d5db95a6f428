//! Treaty law at runtime (docs/law.md): the decision point that checks every signed order
//! against the approved treaties and policies, verifies providers' ACKs, and keeps the replay
//! and quota state.
//!
//! Owns the path of an order from its envelope bytes to a [`Decision`]: the signature and signer
//! ([`signed`], keys from the approved state only), the payload ([`message`]), freshness of the
//! law (only a state whose heartbeat is fresh decides), the clock against the store's
//! high-water mark, the reputation attestation, the constraints ([`decide`]) and the nonce and
//! quota state ([`store`]), in that order. A message whose signature fails gets only that
//! denial and changes no state. The law itself is compiled from an approved tree
//! ([`Law::from_tree`]); the agent swaps it in whole.

pub mod admin;
pub mod api;
pub mod decide;
pub mod journal;
pub mod kpi;
pub mod message;
pub mod receipts;
pub mod redis;
pub mod rego;
pub mod signed;
pub mod store;

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::governance::FileKind;
use crate::source::Tree;
use crate::time::Instant;

use decide::{Attested, Case};
pub use decide::{Bounds, Code, Denial, Law, PolicyLaw, Provenance, TreatyLaw};
use message::{Ack, Attestation, Kind, Order};
use signed::{SignatureProblem, Signers};
use store::{
    AckOutcome, AckRefusal, Hold, Holds, Judged, LawStore, NonceKey, OrderFacts, Recorded,
    StoreError, Timing,
};

/// The answer on one order. Allowed only when `denials` is empty and `allowed` says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub order_id: String,
    pub treaty_id: String,
    /// The signing member of the `orders` role group.
    pub requester: String,
    pub allowed: bool,
    pub denials: Vec<DenialRecord>,
    pub decided_at: String,
    pub commit: String,
    pub root_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_version: Option<u64>,
}

/// A denial as recorded and answered (codes as their stable strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenialRecord {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
}

impl From<&Denial> for DenialRecord {
    fn from(d: &Denial) -> Self {
        DenialRecord {
            code: d.code.as_str().to_owned(),
            // Escaped, then bounded: a denial quotes what a peer sent (a key id, a type).
            message: crate::text::clip(&crate::text::escape(&d.message), MAX_DENIAL_MESSAGE)
                .to_owned(),
            asked: d.asked,
            allowed: d.allowed,
            remaining: d.remaining,
        }
    }
}

/// The longest denial message recorded or answered, in bytes.
pub const MAX_DENIAL_MESSAGE: usize = 512;

/// What the decision point answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The message's signature did not check out: only that denial (nothing about the law is
    /// told to an unauthenticated caller), and no state changed.
    Unauthenticated(DenialRecord),
    /// Signed by a key that may order, but not decided (malformed, stale law, clock behind,
    /// replayed): the denial, and no state changed.
    Refused(DenialRecord),
    /// Decided: new, or the original decision of a byte-identical resubmission; a denial for
    /// capacity or provider health names the treaty the order may go to instead.
    Decided {
        decision: Decision,
        repeat: bool,
        failover: Option<Failover>,
    },
}

/// Where an order denied for capacity or its provider's health may go instead (docs/law.md §
/// Failover): a treaty of the denying treaty's `failover` list whose own full check allows the
/// order now. Advice, not a decision: nothing is reserved there; the requester signs a new order
/// for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failover {
    pub treaty_id: String,
    pub because: FailoverReason,
}

/// Why the order may fail over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailoverReason {
    /// The treaty's GPU-hours or concurrent jobs are used up.
    Capacity,
    /// The treaty is suspended by an approved version (`status: suspended`).
    ProviderSuspended,
    /// The provider breached its fill-rate SLO over the KPI window (docs/law.md § Failover).
    ProviderUnhealthy,
}

/// The failover reason of a denial made only of capacity and provider-health reasons.
fn failover_reason(d: &Decision, suspended: bool) -> Option<FailoverReason> {
    let mut because = None;
    for x in &d.denials {
        let r = match x.code.as_str() {
            "gpu-hours-over-daily-quota" | "concurrent-jobs-over-quota" => FailoverReason::Capacity,
            "treaty-inactive" if suspended => FailoverReason::ProviderSuspended,
            "provider-unhealthy" => FailoverReason::ProviderUnhealthy,
            _ => return None,
        };
        // Health names the reason before capacity (it is why the treaty should not be used).
        because = Some(match (because, r) {
            (Some(FailoverReason::ProviderUnhealthy), _)
            | (_, FailoverReason::ProviderUnhealthy) => FailoverReason::ProviderUnhealthy,
            (Some(FailoverReason::ProviderSuspended), _)
            | (_, FailoverReason::ProviderSuspended) => FailoverReason::ProviderSuspended,
            _ => FailoverReason::Capacity,
        });
    }
    because
}

/// Why the law could not be compiled from an approved state (the agent keeps the last good
/// one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LawError {
    #[error("{path}: {reason}")]
    Document { path: String, reason: String },
    #[error("no usable root of trust in the applied state")]
    NoTrust,
}

/// Reputation as basis points from a governed decimal 0..=1 (`min_reputation: 0.8` → 8000),
/// rounded up; outside 0..=1 it is refused.
fn basis_points(v: &serde_json::Value) -> Option<u32> {
    let x = v.as_f64()?;
    if !(0.0..=1.0).contains(&x) {
        return None;
    }
    // A minimum rounds up (0.80004 is 8,001, never relaxed to 8,000); the tolerance keeps
    // 0.8 (8000.000000000001 in binary) at 8,000.
    let bp = (x * 10_000.0 - 1e-6).ceil().clamp(0.0, 10_000.0);
    // In range by the clamp: the cast is exact.
    Some(bp as u32)
}

fn document(path: &str, reason: impl Into<String>) -> LawError {
    LawError::Document {
        path: path.into(),
        reason: reason.into(),
    }
}

/// A governed quantity: an integer of at most 2^53 − 1, as every quantity of the law.
fn get_u64(v: &serde_json::Value, path: &str, ptr: &str) -> Result<u64, LawError> {
    v.pointer(ptr)
        .and_then(serde_json::Value::as_u64)
        .filter(|n| *n <= message::MAX_QUANTITY)
        .ok_or_else(|| {
            document(
                path,
                format!("{ptr}: an integer of at most 2^53 - 1 is required"),
            )
        })
}

fn get_time(v: &serde_json::Value, path: &str, ptr: &str) -> Result<Instant, LawError> {
    let s = v
        .pointer(ptr)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| document(path, format!("{ptr}: a time is required")))?;
    crate::time::parse(s).map_err(|e| document(path, format!("{ptr}: {e}")))
}

fn get_set(v: &serde_json::Value, path: &str, ptr: &str) -> Result<BTreeSet<String>, LawError> {
    v.pointer(ptr)
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| document(path, format!("{ptr}: a list is required")))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_owned)
                .ok_or_else(|| document(path, format!("{ptr}: strings only")))
        })
        .collect()
}

/// An ordered list of strings (absent: empty), without repeats or the document's own id.
fn get_list(v: &serde_json::Value, path: &str, ptr: &str) -> Result<Vec<String>, LawError> {
    let own = v.pointer("/treaty_id").and_then(serde_json::Value::as_str);
    let Some(items) = v.pointer(ptr) else {
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or_else(|| document(path, format!("{ptr}: a list is required")))?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for x in items {
        let s = x
            .as_str()
            .ok_or_else(|| document(path, format!("{ptr}: strings only")))?;
        if Some(s) != own && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

fn milli(hours: u64, path: &str) -> Result<u64, LawError> {
    hours
        .checked_mul(1000)
        .filter(|m| *m <= message::MAX_QUANTITY)
        .ok_or_else(|| document(path, "gpu_hours_per_day is too large"))
}

fn treaty_law(path: &str, v: &serde_json::Value) -> Result<TreatyLaw, LawError> {
    let status = v
        .pointer("/status")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(TreatyLaw {
        id: v
            .pointer("/treaty_id")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| document(path, "/treaty_id is required"))?
            .to_owned(),
        active: status == "active",
        status,
        network: v
            .pointer("/parties/provider/network")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| document(path, "/parties/provider/network is required"))?
            .to_owned(),
        regions: get_set(v, path, "/regions")?,
        gpu_milli_hours_per_day: milli(get_u64(v, path, "/quotas/gpu_hours_per_day")?, path)?,
        concurrent_jobs: get_u64(v, path, "/quotas/concurrent_jobs")?,
        credits_per_order: get_u64(v, path, "/quotas/credits_per_order")?,
        min_reputation_bp: v
            .pointer("/min_reputation")
            .and_then(basis_points)
            .ok_or_else(|| document(path, "/min_reputation: a number 0..1 is required"))?,
        nonce_ttl_seconds: get_u64(v, path, "/replay_window/nonce_ttl_seconds")?,
        valid_from: get_time(v, path, "/valid_from")?,
        expires: get_time(v, path, "/expires")?,
        slos: v
            .pointer("/slos")
            .and_then(serde_json::Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(_, n)| n.is_number())
                    .map(|(k, n)| (k.clone(), n.to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        failover: get_list(v, path, "/failover")?,
    })
}

fn policy_law(path: &str, v: &serde_json::Value) -> Result<PolicyLaw, LawError> {
    Ok(PolicyLaw {
        id: v
            .pointer("/policy_id")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| document(path, "/policy_id is required"))?
            .to_owned(),
        gpu_milli_hours_per_day: milli(
            get_u64(v, path, "/constraints/quota/gpu_hours_per_day")?,
            path,
        )?,
        concurrent_jobs: get_u64(v, path, "/constraints/quota/concurrent_jobs")?,
        regions: get_set(v, path, "/constraints/region/allowed")?,
        min_reputation_bp: v
            .pointer("/constraints/reputation/min")
            .and_then(basis_points)
            .ok_or_else(|| {
                document(
                    path,
                    "/constraints/reputation/min: a number 0..1 is required",
                )
            })?,
        nonce_ttl_seconds: get_u64(v, path, "/constraints/replay/nonce_ttl_seconds")?,
        not_before: get_time(v, path, "/constraints/validity/not_before")?,
        not_after: get_time(v, path, "/constraints/validity/not_after")?,
        allowlist: get_set(v, path, "/allowlist")?,
        max_amount_per_order: get_u64(v, path, "/max_amount_per_order")?,
        max_daily_volume: get_u64(v, path, "/max_daily_volume")?,
    })
}

impl Law {
    /// Compiles the law from an approved tree: every treaty and policy it holds (the caller has
    /// verified the tree; an unapproved state never reaches here).
    pub fn from_tree(tree: &Tree, provenance: Provenance) -> Result<Law, LawError> {
        let mut law = Law {
            provenance,
            ..Law::default()
        };
        let mut rego = Vec::new();
        for p in tree.entries.keys() {
            let kind = FileKind::of(p);
            if !matches!(kind, FileKind::Treaty | FileKind::Policy | FileKind::Rego) {
                continue;
            }
            let path = p.as_str();
            let bytes = tree.read(p).map_err(|e| document(path, e.to_string()))?;
            if kind == FileKind::Rego {
                let text = String::from_utf8(bytes.into_owned())
                    .map_err(|_| document(path, "not UTF-8"))?;
                rego.push((path.to_owned(), text));
                continue;
            }
            let v = crate::json::parse_value(&bytes).map_err(|e| document(path, e.to_string()))?;
            if kind == FileKind::Treaty {
                let t = treaty_law(path, &v)?;
                if law.treaties.contains_key(&t.id) {
                    return Err(document(
                        path,
                        format!("treaty id {:?} is used by another file", t.id),
                    ));
                }
                law.treaty_docs.insert(t.id.clone(), v);
                law.treaties.insert(t.id.clone(), t);
            } else {
                law.policies.push(policy_law(path, &v)?);
                law.policy_docs.push(v);
            }
        }
        if !rego.is_empty() {
            let rules = rego::Rules::compile(&rego).map_err(|e| LawError::Document {
                path: e.path.clone(),
                reason: e.reason.clone(),
            })?;
            law.rules = Some(std::sync::Arc::new(rules));
        }
        Ok(law)
    }
}

/// The decision point: one applied law, its signers, the operator's bounds and a store.
pub struct Engine<S: LawStore> {
    pub law: Law,
    pub signers: Signers,
    pub bounds: Bounds,
    pub store: S,
    /// Orders are decided only until this instant (the applied heartbeat's age limit plus the
    /// skew); after it every order is `state-stale`.
    pub fresh_until: Instant,
    /// Reputation attestations this engine has verified (they repeat across orders); dropped
    /// with the engine when a new law is applied.
    pub attestations: signed::VerifiedCache,
    /// Each treaty's provider health as last read from the store (docs/law.md § Failover).
    pub health: HealthCache,
    /// Where answered decisions and applied ACKs are recorded as provenance receipts before
    /// they are answered (docs/law.md § Receipts); none: not recorded.
    pub receipts: Option<std::sync::Arc<receipts::Receipts>>,
}

/// How long a treaty's health, read from the store, is used before it is read again: every
/// agent reads the same figures, so the fleet agrees within this.
pub const HEALTH_TTL_SECONDS: i64 = 5;
/// Fewer answers than this in the window say nothing about a provider's health.
pub const MIN_FILL_SAMPLES: u64 = 20;

/// The z-score of the breaker's confidence bound (95%, two-sided).
const FILL_Z: f64 = 1.96;

/// Whether `filled` of `total` answers show a fill rate under `min` (docs/law.md § Failover):
/// at least [`MIN_FILL_SAMPLES`] answers, and even the upper end of the fill rate's 95% Wilson
/// score interval is under `min`. The point estimate alone would trip on chance: a provider
/// that fills 99% of orders shows two failures in twenty about one hour in sixty, and 90% on
/// twenty answers is no evidence against a 95% SLO; a provider that stopped answering is under
/// any SLO within the first twenty.
pub fn fill_below(filled: u64, total: u64, min: f64) -> bool {
    if total < MIN_FILL_SAMPLES || filled > total {
        return false;
    }
    let n = total as f64;
    let p = filled as f64 / n;
    let z2 = FILL_Z * FILL_Z;
    let upper = (p + z2 / (2.0 * n) + FILL_Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt())
        / (1.0 + z2 / n);
    upper < min
}

/// Treaty → (when read, why unhealthy).
#[derive(Debug, Default)]
pub struct HealthCache(std::sync::Mutex<HashMap<String, (i64, Option<String>)>>);

fn refusal(code: Code, message: impl Into<String>) -> DenialRecord {
    DenialRecord::from(&Denial::new(code, message))
}

impl<S: LawStore> Engine<S> {
    fn timing(&self) -> Timing {
        Timing {
            reservation_ttl_seconds: self.bounds.reservation_ttl_seconds,
            max_job_seconds: self.bounds.max_job_seconds,
        }
    }

    /// The decision recorded for an order id (`GET /v1/orders/ID`). It answers a decision too,
    /// so with receipts on it is recorded first (a repeat's receipt; the order's digest is not
    /// known here): a decision whose first receipt failed is never answered without one.
    pub fn lookup(&self, order_id: &str, now: Instant) -> Result<Option<Decision>, StoreError> {
        let d = self.store.order(order_id)?;
        if let (Some(r), Some(d)) = (&self.receipts, &d) {
            r.record_lookup(receipts::decision_receipt(d, "", true, now), order_id)
                .map_err(receipt_failed)?;
        }
        Ok(d)
    }

    /// Decides the order in `envelope` at `now` (docs/law.md § The decision). A decision is
    /// answered only once its receipt is durable (when receipts are kept): a receipt that
    /// cannot be written fails the call like the store would (503); the decision stands in the
    /// store, and the retry, a repeat, records it.
    pub fn decide(&self, envelope: &[u8], now: Instant) -> Result<Answer, StoreError> {
        let v = match signed::verify(envelope, Kind::Order, &self.signers.orders) {
            Ok(v) => v,
            Err(p) => return Ok(Answer::Unauthenticated(signature_denial(&p))),
        };
        let order = match Order::parse(&v.payload) {
            Ok(o) => o,
            Err(e) => {
                return Ok(Answer::Refused(refusal(
                    Code::OrderMalformed,
                    e.to_string(),
                )))
            }
        };
        let digest: [u8; 32] = sha2::Sha256::digest(&v.payload).into();
        let answer = self.decide_verified(&v, &order, digest, now)?;
        if let (
            Some(r),
            Answer::Decided {
                decision, repeat, ..
            },
        ) = (&self.receipts, &answer)
        {
            r.record(receipts::decision_receipt(
                decision,
                &hex::encode(digest),
                *repeat,
                now,
            ))
            .map_err(receipt_failed)?;
        }
        Ok(answer)
    }

    /// [`Self::decide`] for a verified, parsed order whose payload digest is `digest`.
    fn decide_verified(
        &self,
        v: &signed::Verified,
        order: &Order,
        digest: [u8; 32],
        now: Instant,
    ) -> Result<Answer, StoreError> {
        let key = NonceKey {
            keyid: v.signer.member.clone(),
            nonce: order.nonce.clone(),
        };
        // The same message again learns its original decision, whatever changed since (the
        // law's freshness, the order's own validity): a dispatcher whose call timed out can
        // always retry and learn the answer.
        // (A repeat names no failover: the advice stands on the figures of the first decision,
        // which are gone.)
        if let Some(decision) = self.store.recorded(&key, &digest)? {
            return Ok(Answer::Decided {
                decision,
                repeat: true,
                failover: None,
            });
        }
        if now > self.fresh_until {
            return Ok(Answer::Refused(refusal(
                Code::StateStale,
                format!(
                    "the applied law is stale since {} (no fresh heartbeat): no order is decided",
                    crate::time::format(self.fresh_until)
                ),
            )));
        }
        // Not yet due, void, or outliving its nonce: refused before the store, so no nonce is
        // consumed and no state changes (the first such denial is answered).
        if let Some(first) = decide::timing(&self.law, &self.bounds, order, now).first() {
            return Ok(Answer::Refused(DenialRecord::from(first)));
        }
        // The clock against the store's latest change is checked inside the store, atomically
        // with the decision (a call may read the clock a moment before another takes the store).
        let attested = self.attested(order, &v.signer);
        let rego = self.rego_denials(order, &v.signer.member, &v.payload, now);
        let skew = self.bounds.skew_seconds;
        let facts = OrderFacts {
            key,
            digest,
            hold: Hold {
                order_id: order.order_id.clone(),
                treaty_id: order.treaty_id.clone(),
                requester: v.signer.member.clone(),
                gpu_milli_hours: order.gpu_milli_hours,
                credits: order.credits,
                day: store::day(now),
                order_sha256: hex::encode(digest),
                max_job_seconds: order
                    .max_duration_seconds
                    .map_or(self.bounds.max_job_seconds, |d| {
                        d.min(self.bounds.max_job_seconds)
                    }),
            },
            // Until the order can no longer be valid, and never longer than the replay window
            // from now: a denied order asking to live for ever is not remembered for ever (an
            // allowed one lives at most the window less the skew, so this never shortens it).
            forget_after: order.expires().unix().saturating_add_unsigned(skew).min(
                now.unix()
                    .saturating_add_unsigned(decide::replay_window(&self.law, &order.treaty_id))
                    .saturating_add_unsigned(skew),
            ),
        };
        let ceilings = decide::ceilings(&self.law, order);
        let unhealthy = self.unhealthy(&order.treaty_id, now);
        let mut judge = |usage: &decide::Usage| {
            let case = Case {
                order,
                signer: &v.signer,
                attested: &attested,
                usage: *usage,
                now,
            };
            let mut denials = decide::decide(&self.law, &self.bounds, &case);
            // A store newer than the order cannot know whether its nonce was used before: the
            // birth read with the usage, in the store's own step.
            let birth = Instant::from_unix(usage.store_birth).unwrap_or(Instant::MAX);
            if order.issued().unix() <= birth.unix().saturating_add_unsigned(skew) {
                denials.push(Denial::new(
                    Code::StateTooNew,
                    format!(
                        "the order was issued at {}, before this state store began ({}) plus the skew: its nonce may have been used in a state this store never saw",
                        order.issued_at,
                        crate::time::format(birth)
                    ),
                ));
            }
            if let Some(why) = &unhealthy {
                denials.push(Denial::new(Code::ProviderUnhealthy, why.clone()));
            }
            let mut d = self.decision(order, &v.signer.member, &denials, now);
            // The Rego rules only add denials (judged before the store, outside its lock).
            d.denials.extend(rego.iter().cloned());
            d.allowed = d.denials.is_empty();
            // Where the usage can still change the answer: only the quotas read it.
            let holds = if d.allowed {
                Holds::WhileAdmitted(ceilings)
            } else if rego.is_empty() && denials.iter().all(|x| x.code.is_quota()) {
                Holds::WhileRefused(ceilings)
            } else {
                Holds::Regardless
            };
            Judged { decision: d, holds }
        };
        Ok(
            match self.store.decide(&facts, now, self.timing(), &mut judge)? {
                Recorded::First(decision) => Answer::Decided {
                    failover: self.failover(order, &v.signer, &v.payload, &decision, now),
                    decision,
                    repeat: false,
                },
                Recorded::Repeat(decision) => Answer::Decided {
                    decision,
                    repeat: true,
                    failover: None,
                },
                Recorded::Replayed { original_order } => Answer::Refused(refusal(
                    Code::Replayed,
                    format!(
                        "nonce {} of {} was used by order {original_order:?}",
                        order.nonce, v.signer.member
                    ),
                )),
                Recorded::OrderIdTaken => Answer::Refused(refusal(
                    Code::OrderIdReused,
                    format!("order id {:?} was already decided", order.order_id),
                )),
                Recorded::ClockBehind { high_water } => Answer::Refused(refusal(
                    Code::ClockBehind,
                    format!(
                        "this agent's clock ({}) is behind the last change it made ({}): it decides nothing until the clock has caught up",
                        crate::time::format(now),
                        Instant::from_unix(high_water)
                            .map_or_else(|| high_water.to_string(), crate::time::format)
                    ),
                )),
            },
        )
    }

    fn decision(
        &self,
        order: &Order,
        requester: &str,
        denials: &[Denial],
        now: Instant,
    ) -> Decision {
        let p = &self.law.provenance;
        Decision {
            order_id: order.order_id.clone(),
            treaty_id: order.treaty_id.clone(),
            requester: requester.to_owned(),
            allowed: denials.is_empty(),
            denials: denials.iter().map(DenialRecord::from).collect(),
            decided_at: crate::time::format(now),
            commit: p.commit.clone(),
            root_version: p.root_version,
            snapshot_version: p.snapshot_version,
        }
    }

    /// The denials the approved Rego rules add (docs/law.md § Rego); `rego-error` when they
    /// cannot be evaluated within the budget or answer something other than denials.
    /// The treaty an order denied here only for capacity or its provider's health may go to
    /// (docs/law.md § Failover): the first of this treaty's `failover` list whose own full
    /// check — treaty, policies, reputation, amounts, Rego, and its provider's health — allows
    /// the order now. A dry run: nothing is reserved, no nonce consumed. Not transitive: only
    /// this treaty's list is read. The federation-wide and per-requester figures are the
    /// ones this order passed here (the denial named none of theirs), so only the target's
    /// own usage is read; a store that cannot answer means no advice, never a wrong one.
    fn failover(
        &self,
        order: &Order,
        signer: &signed::Signer,
        payload: &[u8],
        decision: &Decision,
        now: Instant,
    ) -> Option<Failover> {
        if decision.allowed {
            return None;
        }
        let source = self.law.treaties.get(&order.treaty_id)?;
        if source.failover.is_empty() {
            return None;
        }
        let because = failover_reason(decision, source.status == "suspended")?;
        let attested = self.attested(order, signer);
        let mut doc = crate::json::parse_value(payload).ok()?;
        for target in &source.failover {
            if !self.law.treaties.contains_key(target) {
                continue;
            }
            let mut o = order.clone();
            o.treaty_id.clone_from(target);
            let tu = self.store.usage(target, now).ok()?;
            let usage = decide::Usage {
                treaty_gpu_milli_hours_today: tu.gpu_milli_hours_today,
                treaty_concurrent_jobs: tu.reserved.saturating_add(tu.running),
                ..decide::Usage::default()
            };
            let case = Case {
                order: &o,
                signer,
                attested: &attested,
                usage,
                now,
            };
            if !decide::decide(&self.law, &self.bounds, &case).is_empty() {
                continue;
            }
            if self.unhealthy(target, now).is_some() {
                continue;
            }
            doc["treaty_id"] = serde_json::Value::String(target.clone());
            let body = doc.to_string();
            if !self
                .rego_denials(&o, &signer.member, body.as_bytes(), now)
                .is_empty()
            {
                continue;
            }
            return Some(Failover {
                treaty_id: target.clone(),
                because,
            });
        }
        None
    }

    /// Why `treaty`'s provider is unhealthy now, if it is (docs/law.md § Failover): it
    /// answered fewer of the orders allowed to it over the KPI window than its approved
    /// fill-rate SLO (`slos.fill_rate_p95_min`), counted in the shared store so every agent
    /// reads the same figures. A treaty without that SLO, a window with fewer than
    /// [`MIN_FILL_SAMPLES`] answers, or a store that cannot answer (the decision then fails on
    /// its own) is not judged unhealthy.
    fn unhealthy(&self, treaty: &str, now: Instant) -> Option<String> {
        let t = self.law.treaties.get(treaty)?;
        let min: f64 = t.slos.get("fill_rate_p95_min")?.parse().ok()?;
        if let Ok(c) = self.health.0.lock() {
            if let Some((at, why)) = c.get(treaty) {
                if (now.unix() - *at).abs() < HEALTH_TTL_SECONDS {
                    return why.clone();
                }
            }
        }
        let f = self.store.fill(treaty, now).ok()?;
        let total = f.filled.saturating_add(f.unfilled);
        let why = fill_below(f.filled, total, min).then(|| {
            format!(
                "the provider of treaty {treaty} answered {} of the last hour's {total} allowed orders ({:.1}%), under the treaty's fill-rate SLO of {:.1}%",
                f.filled,
                100.0 * f.filled as f64 / total as f64,
                100.0 * min
            )
        });
        if let Ok(mut c) = self.health.0.lock() {
            // Bounded by the law's treaties (only a treaty of the law gets here).
            c.insert(treaty.to_owned(), (now.unix(), why.clone()));
        }
        why
    }

    fn rego_denials(
        &self,
        order: &Order,
        requester: &str,
        payload: &[u8],
        now: Instant,
    ) -> Vec<DenialRecord> {
        let Some(rules) = &self.law.rules else {
            return Vec::new();
        };
        let order_doc = crate::json::parse_value(payload).unwrap_or(serde_json::Value::Null);
        let input = serde_json::json!({
            "order": order_doc,
            "requester": requester,
            "treaty": self.law.treaty_docs.get(&order.treaty_id),
            "policies": self.law.policy_docs,
            "now": crate::time::format(now),
        })
        .to_string();
        let budget = std::time::Duration::from_micros(self.bounds.rego_budget_micros);
        match rules.deny(&input, budget) {
            Ok(found) => found
                .into_iter()
                .map(|d| record(&d.code, d.message))
                .collect(),
            Err(why) => vec![refusal(
                Code::RegoError,
                format!("the Rego rules could not be evaluated (the order is denied): {why}"),
            )],
        }
    }

    fn attested(&self, order: &Order, requester: &signed::Signer) -> Attested {
        let Some(env) = &order.attestation else {
            return Attested::Absent;
        };
        let bytes = serde_json::to_vec(env).unwrap_or_default();
        match self
            .attestations
            .verify(&bytes, Kind::Attestation, &self.signers.reputation)
        {
            Err(p) => Attested::Refused(p),
            // One key placing an order and vouching for itself is no attestation.
            Ok(v) if v.signer.shares_key(requester) => {
                Attested::Refused(SignatureProblem::Invalid {
                    kind: Kind::Attestation,
                    reason: format!(
                        "the attestation is signed with the requester's own key ({})",
                        v.signer.member
                    ),
                })
            }
            Ok(v) => match Attestation::parse(&v.payload) {
                Ok(a) => Attested::Signed {
                    attestation: a,
                    by: v.signer.member,
                },
                Err(e) => Attested::Refused(SignatureProblem::Invalid {
                    kind: Kind::Attestation,
                    reason: e.to_string(),
                }),
            },
        }
    }

    /// Applies a provider's signed ACK or completion (docs/law.md § ACKs): signed by a member
    /// of the group pinned for the treaty's provider network, naming the order's digest.
    pub fn ack(&self, envelope: &[u8], now: Instant) -> Result<AckAnswer, StoreError> {
        // Which treaty, hence which provider group: read from the payload before the signature
        // is checked, then checked against exactly that group's keys. A treaty that does not
        // exist answers as a signer who is not its provider: an unauthenticated caller learns
        // nothing about which treaties exist.
        let env = signed::open(envelope, Kind::Ack).ok();
        let treaty = env
            .as_ref()
            .and_then(peek_treaty)
            .and_then(|id| self.law.treaties.get(&id));
        let keys = treaty.and_then(|t| self.signers.groups.get(&t.network));
        let (Some(env), Some(treaty), Some(keys)) = (env, treaty, keys) else {
            return Ok(AckAnswer::Unauthenticated(record(
                "ack-signer-not-provider",
                NOT_PROVIDER,
            )));
        };
        // Every failure before a provider's key verified answers the same, whatever it was
        // (no signature, a wrong count, an unknown key, a bad signature): an unauthenticated
        // caller cannot tell a treaty that exists from one that does not.
        let Ok(v) = signed::verify_envelope(env, Kind::Ack, keys) else {
            return Ok(AckAnswer::Unauthenticated(record(
                "ack-signer-not-provider",
                NOT_PROVIDER,
            )));
        };
        let ack = match Ack::parse(&v.payload) {
            Ok(a) if a.treaty_id == treaty.id => a,
            Ok(_) => {
                return Ok(AckAnswer::Refused(record(
                    "ack-malformed",
                    "the ACK's treaty changed between reads",
                )))
            }
            Err(e) => return Ok(AckAnswer::Refused(record("ack-malformed", e.to_string()))),
        };
        if now > self.fresh_until {
            return Ok(AckAnswer::Refused(record(
                Code::StateStale.as_str(),
                "the applied law is stale: no ACK is applied under it (its provider keys may have been revoked since)",
            )));
        }
        let skew = self.bounds.skew_seconds;
        if ack.at().unix() > now.unix().saturating_add_unsigned(skew) {
            return Ok(AckAnswer::Refused(record(
                "ack-from-future",
                format!("the ACK is dated {}, more than {skew} s after now", ack.at),
            )));
        }
        let facts = store::AckFacts {
            treaty_id: &ack.treaty_id,
            order_id: &ack.order_id,
            order_sha256: &ack.order_sha256,
            status: ack.status,
            used_gpu_milli_hours: ack.used_gpu_milli_hours,
        };
        Ok(match self.store.ack(&facts, now, self.timing())? {
            Ok(outcome) => {
                // Applied (or its repeat): recorded before it is answered.
                if let Some(r) = &self.receipts {
                    let status = serde_json::to_value(ack.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let outcome_name = serde_json::to_value(outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    r.record(receipts::ack_receipt(
                        &receipts::AckFacts {
                            order_id: &ack.order_id,
                            treaty_id: &ack.treaty_id,
                            order_sha256: &ack.order_sha256,
                            ack_sha256: &hex::encode(sha2::Sha256::digest(&v.payload)),
                            status: &status,
                            used_gpu_milli_hours: ack.used_gpu_milli_hours,
                            outcome: &outcome_name,
                        },
                        now,
                    ))
                    .map_err(receipt_failed)?;
                }
                AckAnswer::Applied(outcome)
            }
            Err(refused) => AckAnswer::Refused(record(
                match refused {
                    AckRefusal::ReservationExpired { .. } => "reservation-expired",
                    AckRefusal::UnknownOrder { .. } => "order-unknown",
                    AckRefusal::NotRunning { .. } => "job-not-running",
                    AckRefusal::AlreadyAccepted { .. } => "ack-conflicts",
                    AckRefusal::OtherOrder { .. } => "ack-other-order",
                    AckRefusal::JobTimedOut { .. } => "job-timed-out",
                    AckRefusal::ClockBehind { .. } => "clock-behind",
                },
                refused.to_string(),
            )),
        })
    }
}

/// A receipt that could not be made durable: the call is not answered (as a store failure).
fn receipt_failed(e: receipts::ReceiptError) -> StoreError {
    StoreError::Unavailable {
        store: "the receipts' write-ahead file".into(),
        reason: crate::text::escape(&e.to_string()).into_owned(),
    }
}

/// The one answer to an ACK not signed by its treaty's provider, whether or not the treaty
/// exists: an unauthenticated caller learns nothing about the law.
const NOT_PROVIDER: &str = "the ACK is not signed by the provider of an approved treaty";

/// A denial that is not one of the order codes (ACK refusals), escaped and bounded.
fn record(code: &str, message: impl Into<String>) -> DenialRecord {
    DenialRecord {
        code: code.to_owned(),
        message: crate::text::clip(&crate::text::escape(&message.into()), MAX_DENIAL_MESSAGE)
            .to_owned(),
        asked: None,
        allowed: None,
        remaining: None,
    }
}

/// What an ACK did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckAnswer {
    Unauthenticated(DenialRecord),
    Refused(DenialRecord),
    Applied(AckOutcome),
}

/// The `treaty_id` an ACK envelope's payload names, without trusting anything else of it.
fn peek_treaty(env: &crate::dsse::Envelope) -> Option<String> {
    let v = crate::json::parse_value(&env.payload).ok()?;
    v.get("treaty_id")?.as_str().map(str::to_owned)
}

fn signature_denial(p: &SignatureProblem) -> DenialRecord {
    let code = match p {
        SignatureProblem::Malformed { .. } => Code::OrderMalformed,
        SignatureProblem::UnknownKey { .. } => Code::OrderSignerUnknown,
        SignatureProblem::Invalid { .. } => Code::OrderSignatureInvalid,
    };
    refusal(code, p.to_string())
}

#[cfg(test)]
#[allow(clippy::too_many_lines)]
mod tests {
    //! The decision point without a process: one honest, allowed order over a small law (one
    //! treaty, one policy; keys for the `orders` and `reputation` roles and the provider), then
    //! a table of single changes, each with the exact denial codes it must produce; then the
    //! state machine (replay, repeats, reservations, ACKs, completions, timeouts, a new store,
    //! a clock behind, a stale law) with each rejection's honest twin.
    use super::*;
    use crate::crypto::SigningKey;
    use crate::governance::model::Group;
    use crate::scaffold::{group_body, member_entry};
    use base64::Engine as _;
    use std::collections::BTreeMap;
    use store::MemStore;

    const T0: &str = "2030-01-01T12:00:00Z";
    const TREATY: &str = "AURORA-AKASH-001";

    fn key(id: &str, hybrid: bool) -> SigningKey {
        let seed = blake3::derive_key("treaty law unit tests v1", id.as_bytes());
        let k = SigningKey::deterministic(id, &seed).expect("deterministic key");
        if hybrid {
            k
        } else {
            k.without_ml_dsa()
        }
    }

    fn at(s: &str) -> Instant {
        crate::time::parse(s).expect("time")
    }

    fn plus(t: &str, secs: i64) -> String {
        crate::time::format(at(t) + time::Duration::seconds(secs))
    }

    fn group(name: &str, keys: &[&SigningKey]) -> Group {
        let body = group_body(name, 1, keys.iter().map(|k| member_entry(k)).collect())
            .expect("group body");
        Group::validate(name, &body).expect("group")
    }

    struct Fx {
        acme: SigningKey,
        other: SigningKey,
        rep: SigningKey,
        akash: SigningKey,
        signers: Signers,
        law: Law,
    }

    impl Fx {
        fn new() -> Fx {
            let acme = key("acme", true);
            let other = key("globex", false);
            let rep = key("rep-1", true);
            let akash = key("akash-1", true);
            let orders = group("requesters", &[&acme, &other]);
            let reputation = group("reputation", &[&rep]);
            let provider = group("akash", &[&akash]);
            let groups: BTreeMap<&str, &Group> = [
                ("requesters", &orders),
                ("reputation", &reputation),
                ("akash", &provider),
            ]
            .into();
            let signers = Signers::from_groups(
                Some(("requesters", &orders)),
                Some(("reputation", &reputation)),
                &groups,
                &Default::default(),
            );
            let treaty = TreatyLaw {
                id: TREATY.into(),
                active: true,
                status: "active".into(),
                network: "akash".into(),
                regions: ["us-east".to_owned(), "eu-west".to_owned()].into(),
                gpu_milli_hours_per_day: 10_000,
                concurrent_jobs: 2,
                credits_per_order: 5_000,
                min_reputation_bp: 8_000,
                nonce_ttl_seconds: 3_600,
                valid_from: at("2029-01-01T00:00:00Z"),
                expires: at("2031-01-01T00:00:00Z"),
                slos: BTreeMap::new(),
                failover: Vec::new(),
            };
            let policy = PolicyLaw {
                id: "default".into(),
                gpu_milli_hours_per_day: 20_000,
                concurrent_jobs: 3,
                regions: [
                    "us-east".to_owned(),
                    "eu-west".to_owned(),
                    "ap-south".to_owned(),
                ]
                .into(),
                min_reputation_bp: 7_500,
                nonce_ttl_seconds: 3_600,
                not_before: at("2029-01-01T00:00:00Z"),
                not_after: at("2031-01-01T00:00:00Z"),
                allowlist: [TREATY.to_owned()].into(),
                max_amount_per_order: 4_000,
                max_daily_volume: 6_000,
            };
            Fx {
                acme,
                other,
                rep,
                akash,
                signers,
                law: Law {
                    provenance: Provenance {
                        commit: "c0ffee".into(),
                        root_version: 3,
                        snapshot_version: Some(7),
                    },
                    treaties: [(TREATY.to_owned(), treaty)].into(),
                    policies: vec![policy],
                    ..Law::default()
                },
            }
        }

        fn engine(&self, store: MemStore) -> Engine<MemStore> {
            self.engine_with(store)
        }

        fn engine_with<S: LawStore>(&self, store: S) -> Engine<S> {
            Engine {
                law: self.law.clone(),
                signers: self.signers.clone(),
                bounds: Bounds::default(),
                store,
                fresh_until: at("2030-06-01T00:00:00Z"),
                attestations: Default::default(),
                health: Default::default(),
                receipts: None,
            }
        }

        fn attestation(&self, subject: &str, score: u32, issued: &str) -> serde_json::Value {
            self.attestation_for(subject, score, issued, 86_400)
        }

        fn attestation_for(
            &self,
            subject: &str,
            score: u32,
            issued: &str,
            life: i64,
        ) -> serde_json::Value {
            let a = serde_json::json!({
                "spec_version": "1.0", "subject": subject, "score_bp": score,
                "issued_at": issued, "expires": plus(issued, life)
            });
            let env = signed::sign(
                &serde_json::to_vec(&a).expect("json"),
                Kind::Attestation,
                &self.rep,
            )
            .unwrap();
            crate::json::parse_value(&env).expect("envelope json")
        }

        fn order(&self, n: u32) -> serde_json::Value {
            serde_json::json!({
                "spec_version": "1.0",
                "order_id": format!("ord-{n}"),
                "treaty_id": TREATY,
                "nonce": format!("{n:032x}"),
                "issued_at": T0,
                "not_after": plus(T0, 600),
                "region": "us-east",
                "gpu_milli_hours": 1_500,
                "credits": 1_200,
                "attestation": self.attestation("acme", 9_000, T0)
            })
        }

        fn sign(&self, order: &serde_json::Value, k: &SigningKey) -> Vec<u8> {
            signed::sign(&serde_json::to_vec(order).expect("json"), Kind::Order, k).unwrap()
        }

        fn ack(&self, order: u32, status: &str, used: Option<u64>, when: &str) -> Vec<u8> {
            self.ack_of(&self.order(order), status, used, when)
        }

        /// The provider's ACK of `order` (as signed by [`Fx::sign`]).
        fn ack_of(
            &self,
            order: &serde_json::Value,
            status: &str,
            used: Option<u64>,
            when: &str,
        ) -> Vec<u8> {
            let digest = sha2::Sha256::digest(serde_json::to_vec(order).expect("json"));
            let mut a = serde_json::json!({
                "spec_version": "1.0", "order_id": order["order_id"], "treaty_id": TREATY,
                "order_sha256": hex::encode(digest), "status": status, "at": when
            });
            if let Some(u) = used {
                a["used_gpu_milli_hours"] = u.into();
            }
            signed::sign(
                &serde_json::to_vec(&a).expect("json"),
                Kind::Ack,
                &self.akash,
            )
            .unwrap()
        }
    }

    fn new_store() -> MemStore {
        MemStore::new(at("2029-06-01T00:00:00Z"))
    }

    fn codes(a: &Answer) -> Vec<String> {
        let mut c: Vec<String> = match a {
            Answer::Unauthenticated(d) | Answer::Refused(d) => vec![d.code.clone()],
            Answer::Decided { decision, .. } => {
                decision.denials.iter().map(|d| d.code.clone()).collect()
            }
        };
        c.sort();
        c
    }

    fn allowed(a: &Answer) -> bool {
        matches!(a, Answer::Decided { decision, .. } if decision.allowed && decision.denials.is_empty())
    }

    struct Row {
        name: &'static str,
        change: fn(&Fx, &mut serde_json::Value),
        codes: &'static [&'static str],
    }

    fn rows() -> Vec<Row> {
        vec![
            Row {
                name: "honest",
                change: |_, _| {},
                codes: &[],
            },
            Row {
                name: "unknown treaty",
                change: |_, o| o["treaty_id"] = "AURORA-RENDER-001".into(),
                codes: &["treaty-not-allowlisted", "treaty-unknown"],
            },
            Row {
                name: "region the policy allows but the treaty does not",
                change: |_, o| o["region"] = "ap-south".into(),
                codes: &["region-not-allowed"],
            },
            Row {
                name: "region nobody allows",
                change: |_, o| o["region"] = "sa-east".into(),
                codes: &["region-not-allowed", "region-not-allowed"],
            },
            Row {
                name: "credits over the policy's per-order limit (stricter than the treaty's)",
                change: |_, o| o["credits"] = 4_500.into(),
                codes: &["credits-over-order-limit"],
            },
            Row {
                name: "more GPU hours than the treaty has today",
                change: |_, o| o["gpu_milli_hours"] = 10_001.into(),
                codes: &["gpu-hours-over-daily-quota"],
            },
            Row {
                name: "no attestation",
                change: |_, o| {
                    o.as_object_mut().expect("object").remove("attestation");
                },
                codes: &["reputation-unattested"],
            },
            Row {
                name: "reputation below the treaty's minimum (the stricter)",
                change: |fx, o| o["attestation"] = fx.attestation("acme", 7_900, T0),
                codes: &["reputation-too-low"],
            },
            Row {
                name: "an attestation about someone else",
                change: |fx, o| o["attestation"] = fx.attestation("globex", 9_000, T0),
                codes: &["attestation-wrong-subject"],
            },
            Row {
                name: "an attestation older than accepted",
                change: |fx, o| {
                    o["attestation"] =
                        fx.attestation_for("acme", 9_000, &plus(T0, -86_401), 200_000)
                },
                codes: &["attestation-too-old"],
            },
            Row {
                name: "an attestation that has expired",
                change: |fx, o| {
                    o["attestation"] = fx.attestation_for("acme", 9_000, &plus(T0, -3_600), 3_600)
                },
                codes: &["attestation-expired"],
            },
            Row {
                name: "an attestation issued in the future",
                change: |fx, o| o["attestation"] = fx.attestation("acme", 9_000, &plus(T0, 3_600)),
                codes: &["attestation-not-yet-valid"],
            },
            Row {
                name: "every failed constraint is listed, not only the first",
                change: |_, o| {
                    o["region"] = "sa-east".into();
                    o["credits"] = 5_001.into();
                },
                codes: &[
                    "credits-over-order-limit",
                    "region-not-allowed",
                    "region-not-allowed",
                ],
            },
            Row {
                name: "an attestation signed by a requester, not the reputation role",
                change: |fx, o| {
                    let a = serde_json::json!({
                        "spec_version": "1.0", "subject": "acme", "score_bp": 10_000,
                        "issued_at": T0, "expires": plus(T0, 3_600)
                    });
                    let env = signed::sign(
                        &serde_json::to_vec(&a).expect("json"),
                        Kind::Attestation,
                        &fx.acme,
                    )
                    .unwrap();
                    o["attestation"] = crate::json::parse_value(&env).expect("json");
                },
                codes: &["attestation-signer-unknown"],
            },
            Row {
                name: "an order signed as an attestation",
                change: |fx, o| {
                    let env = signed::sign(b"{}", Kind::Order, &fx.rep).unwrap();
                    o["attestation"] = crate::json::parse_value(&env).expect("json");
                },
                codes: &["attestation-invalid"],
            },
            Row {
                name: "issued in the future beyond the skew",
                change: |_, o| {
                    o["issued_at"] = plus(T0, 301).into();
                    o["not_after"] = plus(T0, 900).into();
                },
                codes: &["issued-in-future"],
            },
            Row {
                name: "expired beyond the skew",
                change: |_, o| {
                    o["issued_at"] = plus(T0, -1_000).into();
                    o["not_after"] = plus(T0, -301).into();
                },
                codes: &["order-expired"],
            },
            Row {
                name: "lives longer than its nonce is remembered",
                change: |_, o| o["not_after"] = plus(T0, 3_301).into(),
                codes: &["order-outlives-nonce"],
            },
        ]
    }

    fn failover_of(a: &Answer) -> Option<(String, FailoverReason)> {
        match a {
            Answer::Decided {
                failover: Some(f), ..
            } => Some((f.treaty_id.clone(), f.because)),
            _ => None,
        }
    }

    /// Failover (docs/law.md § Failover): a denial for capacity, a suspended treaty or an
    /// unhealthy provider names the first treaty of the denying treaty's list whose own full
    /// check allows the order (a target in another region, a full one, an unhealthy one are
    /// passed over), without reserving there; a repeat names none; other denials name none;
    /// the target's own list is never followed.
    #[test]
    fn a_denial_for_capacity_or_health_names_the_first_failover_treaty_that_would_allow_it() {
        const FAR: &str = "AURORA-FAR-001";
        const NEAR: &str = "AURORA-NEAR-001";
        const LAST: &str = "AURORA-LAST-001";
        let fx = Fx::new();
        let mut e = fx.engine(new_store());
        let base = e.law.treaties[TREATY].clone();
        for (id, region, list) in [
            (FAR, "ap-south", vec![]),
            (NEAR, "us-east", vec![LAST.to_owned()]),
            (LAST, "us-east", vec![]),
        ] {
            let t = TreatyLaw {
                id: id.into(),
                regions: [region.to_owned()].into(),
                failover: list,
                ..base.clone()
            };
            e.law.treaties.insert(id.into(), t);
            e.law.policies[0].allowlist.insert(id.into());
        }
        e.law.policies[0].concurrent_jobs = 100;
        e.law.policies[0].gpu_milli_hours_per_day = 1_000_000;
        e.law.policies[0].max_daily_volume = 1_000_000;
        e.law.treaties.get_mut(TREATY).expect("t").failover = vec![FAR.into(), NEAR.into()];
        let order_for = |n: u32, treaty: &str| {
            let mut o = fx.order(n);
            o["treaty_id"] = treaty.into();
            o
        };
        let ack = |o: &serde_json::Value, status: &str| {
            let digest = sha2::Sha256::digest(serde_json::to_vec(o).expect("json"));
            let a = serde_json::json!({
                "spec_version": "1.0", "order_id": o["order_id"], "treaty_id": o["treaty_id"],
                "order_sha256": hex::encode(digest), "status": status, "at": T0
            });
            signed::sign(&serde_json::to_vec(&a).expect("json"), Kind::Ack, &fx.akash).unwrap()
        };
        // Capacity: the treaty's two jobs are taken; NEAR (FAR is in another region) is named.
        for n in 1..=2 {
            assert!(allowed(
                &e.decide(&fx.sign(&fx.order(n), &fx.acme), at(T0))
                    .expect("s")
            ));
        }
        let third = fx.sign(&fx.order(3), &fx.acme);
        let a = e.decide(&third, at(T0)).expect("s");
        assert_eq!(codes(&a), ["concurrent-jobs-over-quota"]);
        assert_eq!(
            failover_of(&a),
            Some((NEAR.into(), FailoverReason::Capacity))
        );
        let u = e.store.usage(NEAR, at(T0)).expect("s");
        assert_eq!(
            (u.reserved, u.allowed),
            (0, 0),
            "nothing is reserved at the target"
        );
        // A repeat names none: the advice stood on the first decision's figures.
        let again = e.decide(&third, at(T0)).expect("s");
        assert_eq!(failover_of(&again), None);
        // Another reason (a region the treaty does not allow) names none.
        let mut west = fx.order(4);
        west["region"] = "ap-south".into();
        let a = e.decide(&fx.sign(&west, &fx.acme), at(T0)).expect("s");
        assert!(
            codes(&a).contains(&"region-not-allowed".to_owned()),
            "{a:?}"
        );
        assert_eq!(failover_of(&a), None);
        // NEAR full too: not transitive, LAST (NEAR's failover) is never named.
        let near: Vec<serde_json::Value> = (10..12).map(|n| order_for(n, NEAR)).collect();
        for o in &near {
            assert!(allowed(
                &e.decide(&fx.sign(o, &fx.acme), at(T0)).expect("s")
            ));
        }
        let a = e
            .decide(&fx.sign(&fx.order(5), &fx.acme), at(T0))
            .expect("s");
        assert_eq!(codes(&a), ["concurrent-jobs-over-quota"]);
        assert_eq!(failover_of(&a), None);
        // A suspended treaty (an approved version with status suspended) fails over too.
        let ok = e.ack(&ack(&near[0], "rejected"), at(T0)).expect("s");
        assert_eq!(ok, AckAnswer::Applied(AckOutcome::Released));
        {
            let t = e.law.treaties.get_mut(TREATY).expect("t");
            t.active = false;
            t.status = "suspended".into();
        }
        let a = e
            .decide(&fx.sign(&fx.order(6), &fx.acme), at(T0))
            .expect("s");
        assert_eq!(
            failover_of(&a),
            Some((NEAR.into(), FailoverReason::ProviderSuspended)),
            "{a:?}"
        );
        // A revoked one does not (not a suspension: the treaty is over).
        e.law.treaties.get_mut(TREATY).expect("t").status = "revoked".into();
        let a = e
            .decide(&fx.sign(&fx.order(7), &fx.acme), at(T0))
            .expect("s");
        assert_eq!(failover_of(&a), None, "{a:?}");
    }

    /// The breaker judges on evidence: under the SLO only when the fill rate's confidence
    /// bound is, never on too few answers or on a chance run of failures.
    #[test]
    fn the_fill_breaker_trips_on_evidence_not_on_chance() {
        for (filled, total, min, below) in [
            // Too few answers judge nothing, however bad.
            (0, MIN_FILL_SAMPLES - 1, 0.95, false),
            // A provider that stopped answering trips at the first judgeable window.
            (0, MIN_FILL_SAMPLES, 0.95, true),
            (5, 40, 0.95, true),
            // Chance: 18 of 20 (90%) or 57 of 60 (95%) is no evidence against 95%.
            (18, 20, 0.95, false),
            (57, 60, 0.95, false),
            (100, 100, 0.95, false),
            // Sustained: 88% over a hundred answers is.
            (88, 100, 0.95, true),
            (850, 1_000, 0.95, true),
            (940, 1_000, 0.95, false),
            // Figures that cannot be are never a verdict against the provider.
            (30, 20, 0.95, false),
            (0, u64::MAX, 0.95, true),
        ] {
            assert_eq!(
                fill_below(filled, total, min),
                below,
                "{filled} of {total} against {min}"
            );
        }
    }

    /// A provider that answers fewer allowed orders than its fill-rate SLO over the window is
    /// unhealthy: its orders are denied `provider-unhealthy` and fail over; an unhealthy target
    /// is passed over; too few answers judge nothing.
    #[test]
    fn an_unhealthy_provider_is_denied_and_failed_over_from_the_shared_figures() {
        const NEAR: &str = "AURORA-NEAR-001";
        let fx = Fx::new();
        let mut e = fx.engine_with(std::sync::Arc::new(new_store()));
        let mut near = e.law.treaties[TREATY].clone();
        near.id = NEAR.into();
        e.law.treaties.insert(NEAR.into(), near);
        e.law.policies[0].allowlist.insert(NEAR.into());
        e.law.policies[0].concurrent_jobs = 100;
        e.law.policies[0].max_daily_volume = 1_000_000;
        e.law.policies[0].gpu_milli_hours_per_day = 100_000_000;
        {
            let t = e.law.treaties.get_mut(TREATY).expect("t");
            t.failover = vec![NEAR.into()];
            t.gpu_milli_hours_per_day = 100_000_000;
            t.slos.insert("fill_rate_p95_min".into(), "0.95".into());
        }
        // 19 allowed orders, every one rejected by the provider: too few answers to judge.
        let reject = |n: u32| {
            let o = fx.order(n);
            assert!(
                allowed(&e.decide(&fx.sign(&o, &fx.acme), at(T0)).expect("s")),
                "{n}"
            );
            let ok = e
                .ack(&fx.ack_of(&o, "rejected", None, T0), at(T0))
                .expect("s");
            assert_eq!(ok, AckAnswer::Applied(AckOutcome::Released));
        };
        for n in 1..MIN_FILL_SAMPLES as u32 {
            reject(n);
        }
        // Read after the health cache's time: still healthy (19 answers).
        let later = at(&plus(T0, HEALTH_TTL_SECONDS + 1));
        assert!(allowed(
            &e.decide(&fx.sign(&fx.order(100), &fx.acme), later)
                .expect("s")
        ));
        let ok = e
            .ack(&fx.ack_of(&fx.order(100), "rejected", None, T0), later)
            .expect("s");
        assert_eq!(ok, AckAnswer::Applied(AckOutcome::Released));
        // The 20th rejection: 0 of 20, under 95%.
        let much_later = at(&plus(T0, 2 * HEALTH_TTL_SECONDS + 2));
        let a = e
            .decide(&fx.sign(&fx.order(200), &fx.acme), much_later)
            .expect("s");
        assert_eq!(codes(&a), ["provider-unhealthy"], "{a:?}");
        assert_eq!(
            failover_of(&a),
            Some((NEAR.into(), FailoverReason::ProviderUnhealthy))
        );
        // The figures are the store's: another engine on the same store agrees at once.
        let other = Engine {
            law: e.law.clone(),
            signers: e.signers.clone(),
            bounds: e.bounds,
            store: e.store.clone(),
            fresh_until: e.fresh_until,
            attestations: Default::default(),
            health: Default::default(),
            receipts: None,
        };
        let a = other
            .decide(&fx.sign(&fx.order(201), &fx.acme), much_later)
            .expect("s");
        assert_eq!(codes(&a), ["provider-unhealthy"], "{a:?}");
        // An unhealthy target is passed over: NEAR with the same SLO and figures.
        e.law
            .treaties
            .get_mut(NEAR)
            .expect("t")
            .slos
            .insert("fill_rate_p95_min".into(), "0.95".into());
        for n in 300..320 {
            let mut o = fx.order(n);
            o["treaty_id"] = NEAR.into();
            assert!(allowed(
                &e.decide(&fx.sign(&o, &fx.acme), much_later).expect("s")
            ));
            let digest = sha2::Sha256::digest(serde_json::to_vec(&o).expect("json"));
            let ack = serde_json::json!({
                "spec_version": "1.0", "order_id": o["order_id"], "treaty_id": NEAR,
                "order_sha256": hex::encode(digest), "status": "rejected", "at": T0
            });
            let ack = signed::sign(
                &serde_json::to_vec(&ack).expect("json"),
                Kind::Ack,
                &fx.akash,
            )
            .unwrap();
            assert_eq!(
                e.ack(&ack, much_later).expect("s"),
                AckAnswer::Applied(AckOutcome::Released)
            );
        }
        let latest = at(&plus(T0, 3 * HEALTH_TTL_SECONDS + 3));
        let a = e
            .decide(&fx.sign(&fx.order(400), &fx.acme), latest)
            .expect("s");
        assert_eq!(codes(&a), ["provider-unhealthy"]);
        assert_eq!(failover_of(&a), None);
    }

    /// A verified attestation is checked once per applied law: the same bytes in a later order
    /// are answered from the cache, but bytes that differ (a higher score under the cached
    /// signature) are checked in full, failures are never kept, and a new law (here: the
    /// attester's key no longer registered) starts with nothing cached.
    #[test]
    fn verified_attestations_are_cached_per_law_and_only_when_they_verify() {
        let fx = Fx::new();
        let e = fx.engine(new_store());
        let att = fx.attestation("acme", 9_000, T0);
        let with = |n: u32, a: &serde_json::Value| {
            let mut o = fx.order(n);
            o["attestation"] = a.clone();
            fx.sign(&o, &fx.acme)
        };
        assert!(allowed(&e.decide(&with(1, &att), at(T0)).expect("store")));
        assert_eq!(e.attestations.len(), 1);
        assert!(allowed(&e.decide(&with(2, &att), at(T0)).expect("store")));
        assert_eq!(e.attestations.len(), 1, "the second order reused the check");

        // The cached signature over another payload: the digest differs, the full check runs.
        let mut forged = att.clone();
        let raised = serde_json::json!({
            "spec_version": "1.0", "subject": "acme", "score_bp": 10_000,
            "issued_at": T0, "expires": plus(T0, 86_400)
        });
        forged["payload"] = base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(&raised).expect("json"))
            .into();
        // (Both slots of the treaty's concurrency are taken by now: that denial joins in.)
        let a = e.decide(&with(3, &forged), at(T0)).expect("store");
        assert_eq!(
            codes(&a),
            ["attestation-invalid", "concurrent-jobs-over-quota"]
        );
        assert_eq!(e.attestations.len(), 1, "a failure is not cached");
        let a = e.decide(&with(4, &forged), at(T0)).expect("store");
        assert_eq!(
            codes(&a),
            ["attestation-invalid", "concurrent-jobs-over-quota"]
        );

        // A law whose reputation group lost the attester: the cached success does not carry over.
        let orders = group("requesters", &[&fx.acme, &fx.other]);
        let reputation = group("reputation", &[&fx.other]);
        let provider = group("akash", &[&fx.akash]);
        let groups: BTreeMap<&str, &Group> = [
            ("requesters", &orders),
            ("reputation", &reputation),
            ("akash", &provider),
        ]
        .into();
        let mut next = fx.engine(new_store());
        next.signers = Signers::from_groups(
            Some(("requesters", &orders)),
            Some(("reputation", &reputation)),
            &groups,
            &Default::default(),
        );
        let a = next.decide(&with(5, &att), at(T0)).expect("store");
        assert_eq!(codes(&a), ["attestation-signer-unknown"]);
        assert!(next.attestations.is_empty());
    }

    /// Rego rules add denials with their own codes (and only add: they cannot lift a denial
    /// the law made); an evaluation error or an overrun of the budget denies `rego-error`.
    #[test]
    fn rego_rules_only_add_denials_and_fail_closed() {
        let fx = Fx::new();
        let head = "# spec_version: 1.0\n# version: 1\npackage treaty\n\n";
        let with_rules = |src: &str| {
            let mut e = fx.engine(new_store());
            let rules = rego::Rules::compile(&[("policies/x.rego".into(), format!("{head}{src}"))])
                .expect("compiles");
            e.law.rules = Some(std::sync::Arc::new(rules));
            e.law.treaty_docs.insert(
                TREATY.into(),
                serde_json::json!({"treaty_id": TREATY, "tier": "gold"}),
            );
            e
        };
        // A rule on the order and the treaty's document: it denies, with its code and message.
        let e = with_rules(
            "deny contains {\"code\": \"rego-gold-only-small\", \"message\": msg} if {\n  input.treaty.tier == \"gold\"\n  input.order.gpu_milli_hours > 100\n  msg := sprintf(\"%v asks %d\", [input.requester, input.order.gpu_milli_hours])\n}\n",
        );
        let a = e
            .decide(&fx.sign(&fx.order(1), &fx.acme), at(T0))
            .expect("store");
        assert_eq!(codes(&a), ["rego-gold-only-small"], "{a:?}");
        assert!(!allowed(&a));
        // A rule that allows everything cannot lift the law's own denial.
        let e = with_rules("deny := set()\n");
        let mut o = fx.order(2);
        o["region"] = "mars-1".into();
        let a = e.decide(&fx.sign(&o, &fx.acme), at(T0)).expect("store");
        assert!(
            codes(&a).contains(&"region-not-allowed".to_owned()),
            "{a:?}"
        );
        let a = e
            .decide(&fx.sign(&fx.order(3), &fx.acme), at(T0))
            .expect("store");
        assert!(
            allowed(&a),
            "the honest order under a rule that denies nothing: {a:?}"
        );
        // Errors fail closed.
        for (name, src) in [
            (
                "division by zero",
                "deny contains {\"code\": \"rego-x\", \"message\": m} if { m := 1 / 0 }\n",
            ),
            (
                "a code without the prefix",
                "deny contains {\"code\": \"quota\", \"message\": \"m\"}\n",
            ),
            ("no deny rule", "allow := true\n"),
        ] {
            let e = with_rules(src);
            let a = e
                .decide(&fx.sign(&fx.order(4), &fx.acme), at(T0))
                .expect("store");
            assert_eq!(codes(&a), ["rego-error"], "{name}: {a:?}");
        }
        // The budget: a rule that loops past it.
        let mut e = with_rules(
            "deny contains {\"code\": \"rego-slow\", \"message\": \"m\"} if {\n  some i in numbers.range(1, 20000)\n  some j in numbers.range(1, 20000)\n  i + j < 0\n}\n",
        );
        e.bounds.rego_budget_micros = 10_000;
        let a = e
            .decide(&fx.sign(&fx.order(5), &fx.acme), at(T0))
            .expect("store");
        assert_eq!(codes(&a), ["rego-error"], "{a:?}");
    }

    /// A message that cannot be decided now (not yet due, void, outliving its nonce) is
    /// refused without consuming its nonce or its order id: the same nonce and id in an honest
    /// order are then decided as new.
    #[test]
    fn orders_refused_for_their_times_change_no_state() {
        let fx = Fx::new();
        let e = fx.engine(new_store());
        type Edit = fn(&mut serde_json::Value);
        let edits: [(&str, Edit); 3] = [
            ("issued-in-future", |o| {
                o["issued_at"] = plus(T0, 400).into();
                o["not_after"] = plus(T0, 900).into();
            }),
            ("order-expired", |o| {
                o["issued_at"] = plus(T0, -1_000).into();
                o["not_after"] = plus(T0, -400).into();
            }),
            ("order-outlives-nonce", |o| {
                o["not_after"] = plus(T0, 3_301).into()
            }),
        ];
        for (code, edit) in edits {
            let mut o = fx.order(7);
            edit(&mut o);
            let a = e.decide(&fx.sign(&o, &fx.acme), at(T0)).expect("store");
            assert!(
                matches!(&a, Answer::Refused(d) if d.code == code),
                "{code}: {a:?}"
            );
        }
        assert_eq!(e.store.order("ord-7").expect("store"), None);
        let a = e
            .decide(&fx.sign(&fx.order(7), &fx.acme), at(T0))
            .expect("store");
        assert!(allowed(&a), "{a:?}");
    }

    #[test]
    fn each_constraint_denies_its_class_with_numbers_and_the_honest_order_is_allowed() {
        let fx = Fx::new();
        for (i, row) in rows().into_iter().enumerate() {
            let e = fx.engine(new_store());
            let mut o = fx.order(i as u32);
            (row.change)(&fx, &mut o);
            let a = e.decide(&fx.sign(&o, &fx.acme), at(T0)).expect("store");
            assert_eq!(codes(&a), row.codes, "{}: {a:?}", row.name);
            assert_eq!(allowed(&a), row.codes.is_empty(), "{}", row.name);
            if let Answer::Decided { decision, .. } = &a {
                assert_eq!(decision.commit, "c0ffee");
                assert_eq!(decision.root_version, 3);
                assert_eq!(decision.requester, "acme");
            }
        }
    }

    /// The law's side: each treaty and policy field that can deny, with its honest twin (the
    /// first row of the table above).
    #[test]
    fn each_field_of_the_law_denies_its_class() {
        type Edit = fn(&mut Law);
        let rows: &[(&str, Edit, &[&str])] = &[
            (
                "suspended treaty",
                |l| {
                    let t = l.treaties.get_mut(TREATY).expect("treaty");
                    t.active = false;
                    t.status = "suspended".into();
                },
                &["treaty-inactive"],
            ),
            (
                "treaty not yet valid",
                |l| {
                    l.treaties.get_mut(TREATY).expect("treaty").valid_from =
                        at("2030-06-01T00:00:00Z");
                },
                &["treaty-not-yet-valid"],
            ),
            (
                "treaty expired",
                |l| {
                    l.treaties.get_mut(TREATY).expect("treaty").expires = at(T0);
                },
                &["treaty-expired"],
            ),
            (
                "policy no longer valid",
                |l| l.policies[0].not_after = at(T0),
                &["policy-not-valid"],
            ),
            (
                "treaty not allowlisted",
                |l| l.policies[0].allowlist.clear(),
                &["treaty-not-allowlisted"],
            ),
            (
                "federation GPU hours",
                |l| l.policies[0].gpu_milli_hours_per_day = 1_000,
                &["federation-gpu-hours-over-daily-quota"],
            ),
            (
                "federation concurrency",
                |l| l.policies[0].concurrent_jobs = 0,
                &["federation-concurrent-jobs-over-quota"],
            ),
            (
                "treaty concurrency",
                |l| {
                    l.treaties.get_mut(TREATY).expect("treaty").concurrent_jobs = 0;
                },
                &["concurrent-jobs-over-quota"],
            ),
            (
                "a replay window shorter than the order's life",
                |l| {
                    l.treaties
                        .get_mut(TREATY)
                        .expect("treaty")
                        .nonce_ttl_seconds = 600;
                    l.policies[0].nonce_ttl_seconds = 600;
                },
                &["order-outlives-nonce"],
            ),
            (
                "the longer window wins",
                |l| {
                    l.treaties
                        .get_mut(TREATY)
                        .expect("treaty")
                        .nonce_ttl_seconds = 600;
                },
                &[],
            ),
            (
                "a second, stricter policy",
                |l| {
                    let mut p = l.policies[0].clone();
                    p.id = "strict".into();
                    p.max_amount_per_order = 1_000;
                    l.policies.push(p);
                },
                &["credits-over-order-limit"],
            ),
        ];
        let fx = Fx::new();
        for (i, (name, edit, want)) in rows.iter().enumerate() {
            let mut e = fx.engine(new_store());
            edit(&mut e.law);
            let a = e
                .decide(&fx.sign(&fx.order(i as u32), &fx.acme), at(T0))
                .expect("store");
            assert_eq!(codes(&a), *want, "{name}: {a:?}");
            assert_eq!(allowed(&a), want.is_empty(), "{name}");
        }
    }

    /// The example federation's approved treaties and policy compile into the law, in
    /// message units (hours → milli-hours, reputation → basis points).
    #[test]
    fn this_repositorys_treaties_and_policy_compile_into_the_law() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let tree = crate::source::tree_from_dir(root).expect("work tree");
        let law = Law::from_tree(&tree, Provenance::default()).expect("law");
        assert_eq!(law.treaties.len(), 7);
        assert_eq!(law.policies.len(), 1);
        let t = &law.treaties[TREATY];
        assert_eq!(t.network, "akash");
        assert_eq!(t.gpu_milli_hours_per_day, 2_400_000);
        assert_eq!(t.min_reputation_bp, 8_000);
        assert!(t.active);
        assert_eq!(law.policies[0].min_reputation_bp, 7_500);
        // A treaty whose quota is not an integer is refused with its path and field.
        let mut bad = crate::source::Tree::default();
        let p = crate::path::RepoPath::new("treaties/AURORA-AKASH-001.json").expect("path");
        let text = std::fs::read_to_string(root.join(p.as_str()))
            .expect("treaty")
            .replace(
                "\"gpu_hours_per_day\": 2400",
                "\"gpu_hours_per_day\": 2400.5",
            );
        bad.entries
            .insert(p, crate::source::Entry::File(text.into_bytes()));
        let e = Law::from_tree(&bad, Provenance::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("treaties/AURORA-AKASH-001.json: /quotas/gpu_hours_per_day"),
            "{e}"
        );
    }

    #[test]
    fn a_denial_carries_asked_allowed_and_remaining() {
        let fx = Fx::new();
        let e = fx.engine(new_store());
        let mut o = fx.order(1);
        o["gpu_milli_hours"] = 10_001.into();
        let Answer::Decided { decision, .. } =
            e.decide(&fx.sign(&o, &fx.acme), at(T0)).expect("store")
        else {
            panic!("decided")
        };
        let d = &decision.denials[0];
        assert_eq!(
            (d.asked, d.allowed, d.remaining),
            (Some(10_001), Some(10_000), Some(10_000))
        );
    }

    #[test]
    fn signatures_must_be_by_an_orders_key_whole_and_untampered() {
        let fx = Fx::new();
        let e = fx.engine(new_store());
        let o = fx.order(1);
        // A provider's key may not order.
        let a = e.decide(&fx.sign(&o, &fx.akash), at(T0)).expect("store");
        assert_eq!(codes(&a), ["order-signer-unknown"]);
        assert!(matches!(a, Answer::Unauthenticated(_)));
        // A hybrid member's Ed25519 half alone is a downgrade: refused.
        let env = fx.sign(&o, &fx.acme);
        let mut v = crate::json::parse_value(&env).expect("json");
        v["signatures"]
            .as_array_mut()
            .expect("list")
            .retain(|s| s["keyid"] == fx.acme.classical_public().key_id().as_str());
        let a = e
            .decide(&serde_json::to_vec(&v).expect("json"), at(T0))
            .expect("store");
        assert_eq!(codes(&a), ["order-signature-invalid"]);
        // Another payload under the same signatures.
        let mut v = crate::json::parse_value(&env).expect("json");
        let mut tampered = o.clone();
        tampered["credits"] = 1.into();
        v["payload"] = crate::crypto::b64(&serde_json::to_vec(&tampered).expect("json")).into();
        let a = e
            .decide(&serde_json::to_vec(&v).expect("json"), at(T0))
            .expect("store");
        assert_eq!(codes(&a), ["order-signature-invalid"]);
        // An ACK envelope is not an order.
        let a = e
            .decide(&fx.ack(1, "accepted", None, T0), at(T0))
            .expect("store");
        assert_eq!(codes(&a), ["order-malformed"]);
        // None of these changed state: the honest order is still decided first.
        let a = e.decide(&env, at(T0)).expect("store");
        assert!(allowed(&a));
        assert!(matches!(a, Answer::Decided { repeat: false, .. }));
        // An Ed25519-only member signs with one signature.
        let mut o2 = fx.order(2);
        o2["attestation"] = fx.attestation("globex", 9_000, T0);
        assert!(allowed(
            &e.decide(&fx.sign(&o2, &fx.other), at(T0)).expect("store")
        ));
    }

    #[test]
    fn a_nonce_is_used_once_a_repeat_gets_the_original_and_another_message_is_replayed() {
        let fx = Fx::new();
        let e = fx.engine(new_store());
        let o = fx.order(1);
        let env = fx.sign(&o, &fx.acme);
        let first = e.decide(&env, at(T0)).expect("store");
        assert!(allowed(&first));
        let again = e.decide(&env, at(&plus(T0, 5))).expect("store");
        let (
            Answer::Decided { decision: d1, .. },
            Answer::Decided {
                decision: d2,
                repeat,
                ..
            },
        ) = (&first, &again)
        else {
            panic!("decided twice: {again:?}")
        };
        assert!(repeat);
        assert_eq!(d1, d2);
        // The same nonce on another message.
        let mut o2 = o.clone();
        o2["order_id"] = "ord-other".into();
        let a = e
            .decide(&fx.sign(&o2, &fx.acme), at(&plus(T0, 6)))
            .expect("store");
        assert_eq!(codes(&a), ["replayed"]);
        // A denied order consumes its nonce too.
        let mut bad = fx.order(3);
        bad["region"] = "sa-east".into();
        let env3 = fx.sign(&bad, &fx.acme);
        assert!(!allowed(&e.decide(&env3, at(&plus(T0, 7))).expect("store")));
        bad["region"] = "us-east".into();
        bad["order_id"] = "ord-3b".into();
        let a = e
            .decide(&fx.sign(&bad, &fx.acme), at(&plus(T0, 8)))
            .expect("store");
        assert_eq!(codes(&a), ["replayed"]);
        // Nonces are per signer: another requester may use the same nonce.
        let mut g = fx.order(1);
        g["order_id"] = "ord-globex".into();
        g["attestation"] = fx.attestation("globex", 9_000, T0);
        assert!(allowed(
            &e.decide(&fx.sign(&g, &fx.other), at(&plus(T0, 9)))
                .expect("store")
        ));
        // And an order id is unique.
        let mut dup = fx.order(4);
        dup["order_id"] = "ord-1".into();
        let a = e
            .decide(&fx.sign(&dup, &fx.acme), at(&plus(T0, 10)))
            .expect("store");
        assert_eq!(codes(&a), ["order-id-reused"]);
    }

    #[test]
    fn quotas_count_reservations_and_running_jobs_until_they_are_released_or_end() {
        let fx = Fx::new();
        let e = fx.engine(new_store());
        let t = |s: i64| at(&plus(T0, s));
        // Two concurrent jobs fill the treaty; the third is denied with the numbers.
        assert!(allowed(
            &e.decide(&fx.sign(&fx.order(1), &fx.acme), t(0)).expect("s")
        ));
        let mut o2 = fx.order(2);
        o2["attestation"] = fx.attestation("globex", 9_000, T0);
        assert!(allowed(
            &e.decide(&fx.sign(&o2, &fx.other), t(1)).expect("s")
        ));
        let a = e.decide(&fx.sign(&fx.order(3), &fx.acme), t(2)).expect("s");
        assert_eq!(codes(&a), ["concurrent-jobs-over-quota"]);
        // The provider rejects order 2: its hold is released, order 4 fits.
        assert_eq!(
            e.ack(&fx.ack_of(&o2, "rejected", None, T0), t(3))
                .expect("s"),
            AckAnswer::Applied(AckOutcome::Released)
        );
        assert!(allowed(
            &e.decide(&fx.sign(&fx.order(4), &fx.acme), t(4)).expect("s")
        ));
        // Order 1 accepted, then completed using less than held: the day's counter trues up.
        assert_eq!(
            e.ack(&fx.ack(1, "accepted", None, T0), t(5)).expect("s"),
            AckAnswer::Applied(AckOutcome::Running)
        );
        assert_eq!(
            e.ack(&fx.ack(1, "completed", Some(500), T0), t(6))
                .expect("s"),
            AckAnswer::Applied(AckOutcome::Ended)
        );
        let u = e.store.usage(TREATY, t(6)).expect("s");
        assert_eq!(u.gpu_milli_hours_today, 500 + 1_500);
        assert_eq!((u.reserved, u.running, u.acks_accepted), (1, 0, 1));
        // The same completion again changes nothing.
        assert_eq!(
            e.ack(&fx.ack(1, "completed", Some(500), T0), t(7))
                .expect("s"),
            AckAnswer::Applied(AckOutcome::Repeat)
        );
        // A requester's daily volume: acme has spent 1,200 + 1,200 (order 1, 4) and the
        // denied order 3 nothing; 6,000 a day allows one more of 1,200, not of 4,000.
        let mut big = fx.order(5);
        big["credits"] = 4_000.into();
        let a = e.decide(&fx.sign(&big, &fx.acme), t(8)).expect("s");
        assert_eq!(codes(&a), ["volume-over-daily-limit"]);
    }

    #[test]
    fn a_reservation_without_an_ack_expires_and_a_silent_job_times_out() {
        let fx = Fx::new();
        let e = fx.engine(new_store());
        let t = |s: i64| at(&plus(T0, s));
        assert!(allowed(
            &e.decide(&fx.sign(&fx.order(1), &fx.acme), t(0)).expect("s")
        ));
        // Past the reservation's 300 s: the late ACK is refused and the hold released.
        let late = e.ack(&fx.ack(1, "accepted", None, T0), t(301)).expect("s");
        assert!(
            matches!(late, AckAnswer::Refused(ref d) if d.code == "reservation-expired"),
            "{late:?}"
        );
        let u = e.store.usage(TREATY, t(301)).expect("s");
        assert_eq!(
            (u.gpu_milli_hours_today, u.reserved, u.reservations_expired),
            (0, 0, 1)
        );
        // Its honest twin: an ACK in time runs the job; past the job's maximum it is closed.
        assert!(allowed(
            &e.decide(&fx.sign(&fx.order(2), &fx.acme), t(302))
                .expect("s")
        ));
        assert_eq!(
            e.ack(&fx.ack(2, "accepted", None, T0), t(303)).expect("s"),
            AckAnswer::Applied(AckOutcome::Running)
        );
        let u = e.store.usage(TREATY, t(303 + 86_400 + 1)).expect("s");
        assert_eq!(u.running, 0);
        // An ACK from a key that is not the treaty's provider.
        let sha = hex::encode(sha2::Sha256::digest(
            serde_json::to_vec(&fx.order(2)).expect("json"),
        ));
        let mut a = serde_json::json!({"spec_version": "1.0", "order_id": "ord-2", "treaty_id": TREATY, "order_sha256": sha, "status": "completed", "at": T0, "used_gpu_milli_hours": 1});
        let forged =
            signed::sign(&serde_json::to_vec(&a).expect("json"), Kind::Ack, &fx.acme).unwrap();
        let r = e.ack(&forged, t(304)).expect("s");
        assert!(
            matches!(r, AckAnswer::Unauthenticated(ref d) if d.code == "ack-signer-not-provider"),
            "{r:?}"
        );
        a["order_id"] = "ord-unknown".into();
        let unknown =
            signed::sign(&serde_json::to_vec(&a).expect("json"), Kind::Ack, &fx.akash).unwrap();
        let r = e.ack(&unknown, t(305)).expect("s");
        assert!(
            matches!(r, AckAnswer::Refused(ref d) if d.code == "order-unknown"),
            "{r:?}"
        );
    }

    #[test]
    fn a_new_store_a_clock_behind_and_a_stale_law_decide_nothing() {
        let fx = Fx::new();
        // A store born after the order was issued (wiped, restored, emptyDir): state-too-new.
        let e = fx.engine(MemStore::new(at(T0)));
        let a = e
            .decide(&fx.sign(&fx.order(1), &fx.acme), at(T0))
            .expect("s");
        assert_eq!(codes(&a), ["state-too-new"]);
        // Its twin: an order issued after birth + skew is decided.
        let mut o = fx.order(2);
        o["issued_at"] = plus(T0, 301).into();
        o["not_after"] = plus(T0, 900).into();
        assert!(allowed(
            &e.decide(&fx.sign(&o, &fx.acme), at(&plus(T0, 301)))
                .expect("s")
        ));
        // The clock stepped back behind the last decision: refused, no state changed.
        let mut o3 = fx.order(3);
        o3["issued_at"] = plus(T0, 302).into();
        o3["not_after"] = plus(T0, 900).into();
        let env3 = fx.sign(&o3, &fx.acme);
        let a = e.decide(&env3, at(&plus(T0, 297))).expect("s");
        assert_eq!(codes(&a), ["clock-behind"]);
        // Stepped forward again: decided (its nonce was not consumed by the refusal).
        assert!(allowed(&e.decide(&env3, at(&plus(T0, 302))).expect("s")));
        // A call that read the clock a moment before the last change (within 2 s) is decided
        // (here denied on its merits: the treaty's two concurrent jobs are taken).
        let mut o4 = fx.order(4);
        o4["issued_at"] = plus(T0, 301).into();
        o4["not_after"] = plus(T0, 900).into();
        let a = e
            .decide(&fx.sign(&o4, &fx.acme), at(&plus(T0, 301)))
            .expect("s");
        assert_eq!(codes(&a), ["concurrent-jobs-over-quota"]);
        // A law past its freshness deadline decides nothing.
        let mut stale = fx.engine(new_store());
        stale.fresh_until = at(&plus(T0, -1));
        let a = stale
            .decide(&fx.sign(&fx.order(4), &fx.acme), at(T0))
            .expect("s");
        assert_eq!(codes(&a), ["state-stale"]);
    }
    /// Review findings (issue 16): an ACK binds to one order instance; completions of jobs that
    /// never ran or ran out are refused; future-dated ACKs, self-attestation, a clock behind
    /// inside the store, and oversized peer text in answers.
    #[test]
    fn acks_bind_to_their_order_and_peer_text_is_bounded() {
        let fx = Fx::new();
        let e = fx.engine(new_store());
        let t = |s: i64| at(&plus(T0, s));
        let o1 = fx.order(1);
        assert!(allowed(
            &e.decide(&fx.sign(&o1, &fx.acme), t(0)).expect("s")
        ));
        // An ACK for another order that used the id "ord-1" (another digest) acts on nothing.
        let mut impostor = o1.clone();
        impostor["credits"] = 1.into();
        let r = e
            .ack(&fx.ack_of(&impostor, "rejected", None, T0), t(1))
            .expect("s");
        assert!(
            matches!(r, AckAnswer::Refused(ref d) if d.code == "ack-other-order"),
            "{r:?}"
        );
        // Dated beyond the skew: refused.
        let r = e
            .ack(&fx.ack_of(&o1, "accepted", None, &plus(T0, 400)), t(2))
            .expect("s");
        assert!(
            matches!(r, AckAnswer::Refused(ref d) if d.code == "ack-from-future"),
            "{r:?}"
        );
        // The honest twin runs the job; past its deadline a completion is refused, not counted.
        assert_eq!(
            e.ack(&fx.ack_of(&o1, "accepted", None, T0), t(3))
                .expect("s"),
            AckAnswer::Applied(AckOutcome::Running)
        );
        let late = e
            .ack(&fx.ack_of(&o1, "completed", Some(10), T0), t(3 + 86_401))
            .expect("s");
        assert!(
            matches!(late, AckAnswer::Refused(ref d) if d.code == "job-timed-out"),
            "{late:?}"
        );
        // A completion for an order whose reservation expired (it never ran) is no repeat.
        let o2 = fx.order(2);
        let e2 = fx.engine(new_store());
        assert!(allowed(
            &e2.decide(&fx.sign(&o2, &fx.acme), t(0)).expect("s")
        ));
        let d = e2
            .decide(&fx.sign(&fx.order(3), &fx.acme), t(400))
            .expect("s"); // sweeps order 2
        assert!(allowed(&d), "{d:?}");
        let r = e2
            .ack(&fx.ack_of(&o2, "completed", Some(5), T0), t(401))
            .expect("s");
        assert!(
            matches!(r, AckAnswer::Refused(ref d) if d.code == "reservation-expired"),
            "{r:?}"
        );
        // A clock behind inside the store (a call older than the last change): refused.
        let behind = e2
            .decide(&fx.sign(&fx.order(4), &fx.acme), t(396))
            .expect("s");
        assert_eq!(codes(&behind), ["clock-behind"]);
        // A requester attesting itself is no attestation.
        let self_env = signed::sign(
            &serde_json::to_vec(&serde_json::json!({"spec_version": "1.0", "subject": "acme", "score_bp": 10_000, "issued_at": T0, "expires": plus(T0, 3_600)})).expect("json"),
            Kind::Attestation,
            &fx.acme,
        ).unwrap();
        let mut rep_and_requester = fx.signers.clone();
        rep_and_requester.reputation = rep_and_requester.orders.clone();
        let mut e3 = fx.engine(new_store());
        e3.signers = rep_and_requester;
        let mut o5 = fx.order(5);
        o5["attestation"] = crate::json::parse_value(&self_env).expect("json");
        let a = e3.decide(&fx.sign(&o5, &fx.acme), t(0)).expect("s");
        assert_eq!(codes(&a), ["attestation-invalid"]);
        // A key id of 700 KB in an attestation: the answer stays bounded.
        let mut env = fx.attestation("acme", 9_000, T0);
        env["signatures"][0]["keyid"] = "\u{202e}".repeat(200_000).into();
        let mut o6 = fx.order(6);
        o6["attestation"] = env;
        let Answer::Decided { decision, .. } = e.decide(&fx.sign(&o6, &fx.acme), t(10)).expect("s")
        else {
            panic!("decided")
        };
        assert!(decision
            .denials
            .iter()
            .all(|d| d.message.len() <= MAX_DENIAL_MESSAGE));
        assert_eq!(decision.denials[0].code, "attestation-signer-unknown");
    }

    /// Second review (issue 16): a denied order asking to live for ever is forgotten after the
    /// replay window; a key that places orders never acknowledges as a provider; a provider
    /// reporting more usage than held cannot spend more than the law allowed.
    #[test]
    fn denied_orders_are_forgotten_requesters_never_ack_and_usage_is_capped() {
        let fx = Fx::new();
        let e = fx.engine(new_store());
        let t = |s: i64| at(&plus(T0, s));
        let mut forever = fx.order(1);
        forever["not_after"] = "9999-12-31T00:00:00Z".into();
        let a = e.decide(&fx.sign(&forever, &fx.acme), t(0)).expect("s");
        assert_eq!(codes(&a), ["order-outlives-nonce"]);
        // After the window (3,600 s) plus the skew and the tolerance, a decision sweeps it.
        let mut later = fx.order(2);
        later["issued_at"] = plus(T0, 3_910).into();
        later["not_after"] = plus(T0, 4_000).into();
        later["attestation"] = fx.attestation("acme", 9_000, &plus(T0, 3_900));
        assert!(allowed(
            &e.decide(&fx.sign(&later, &fx.acme), t(3_910)).expect("s")
        ));
        assert!(
            e.store.order("ord-1").expect("s").is_none(),
            "the denied order is forgotten"
        );
        // Usage over the hold is counted as the hold.
        let o2 = later.clone();
        assert_eq!(
            e.ack(
                &fx.ack_of(&o2, "accepted", None, &plus(T0, 3_911)),
                t(3_911)
            )
            .expect("s"),
            AckAnswer::Applied(AckOutcome::Running)
        );
        assert_eq!(
            e.ack(
                &fx.ack_of(&o2, "completed", Some(9_000_000), &plus(T0, 3_912)),
                t(3_912)
            )
            .expect("s"),
            AckAnswer::Applied(AckOutcome::Ended)
        );
        assert_eq!(
            e.store
                .usage(TREATY, t(3_912))
                .expect("s")
                .gpu_milli_hours_today,
            1_500
        );
        // A key in both the orders group and the provider group signs no ACK.
        let both = group("akash", &[&fx.akash]);
        let orders = group("requesters", &[&fx.acme, &fx.akash]);
        let groups: BTreeMap<&str, &Group> = [("akash", &both), ("requesters", &orders)].into();
        let signers = Signers::from_groups(
            Some(("requesters", &orders)),
            None,
            &groups,
            &Default::default(),
        );
        assert!(signers.groups["akash"].is_empty());
    }

    // --- the durable store ------------------------------------------------------------------

    use journal::JournalStore;

    fn open(dir: &std::path::Path, t: &str) -> JournalStore {
        JournalStore::open(dir, at(t)).expect("open the store")
    }

    /// Group commit: decisions made by several threads at once are each durable when answered
    /// (all there after a restart, none twice), with at most one sync per decision.
    #[test]
    fn concurrent_decisions_share_syncs_and_each_is_durable_when_answered() {
        let fx = Fx::new();
        let dir = tempfile::tempdir().expect("tmp");
        let per_thread = 40u32;
        let envs: Vec<Vec<Vec<u8>>> = (0..4u32)
            .map(|t| {
                (0..per_thread)
                    .map(|i| {
                        let mut o = fx.order(1_000 + t * 100 + i);
                        // Small enough that the quotas never deny: every one is allowed.
                        o["gpu_milli_hours"] = 1.into();
                        o["credits"] = 1.into();
                        fx.sign(&o, &fx.acme)
                    })
                    .collect()
            })
            .collect();
        let syncs = {
            let mut e = fx.engine_with(open(dir.path(), "2029-12-31T00:00:00Z"));
            e.law
                .treaties
                .values_mut()
                .for_each(|t| t.concurrent_jobs = 1_000);
            e.law
                .policies
                .iter_mut()
                .for_each(|p| p.concurrent_jobs = 1_000);
            let e = &e;
            let answered: Vec<usize> = std::thread::scope(|s| {
                let hs: Vec<_> = envs
                    .iter()
                    .map(|batch| {
                        s.spawn(move || {
                            batch
                                .iter()
                                .filter(|env| allowed(&e.decide(env, at(T0)).expect("store")))
                                .count()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().expect("thread")).collect()
            });
            assert_eq!(answered.iter().sum::<usize>(), 4 * per_thread as usize);
            e.store.syncs()
        };
        assert!(syncs <= u64::from(4 * per_thread), "{syncs} syncs");
        let e = fx.engine_with(open(dir.path(), &plus(T0, 10)));
        for batch in &envs {
            for env in batch {
                let a = e.decide(env, at(&plus(T0, 11))).expect("store");
                assert!(
                    matches!(a, Answer::Decided { repeat: true, ref decision, .. } if decision.allowed),
                    "{a:?}"
                );
            }
        }
    }

    /// Decisions, nonces and holds survive a restart: a repeat gets the recorded decision, a
    /// replay is refused, usage is kept; and an order issued before the restart plus the skew
    /// is `state-too-new` (a restart cannot be told from a restore), its twin issued after it
    /// is decided.
    #[test]
    fn the_durable_store_keeps_nonces_decisions_and_holds_across_a_restart() {
        let fx = Fx::new();
        let dir = tempfile::tempdir().expect("tmp");
        let born = "2029-12-31T00:00:00Z";
        let env1 = fx.sign(&fx.order(1), &fx.acme);
        {
            let e = fx.engine_with(open(dir.path(), born));
            assert!(allowed(&e.decide(&env1, at(T0)).expect("s")));
            assert_eq!(
                e.ack(&fx.ack(1, "accepted", None, T0), at(&plus(T0, 1)))
                    .expect("s"),
                AckAnswer::Applied(AckOutcome::Running)
            );
        }
        let e = fx.engine_with(open(dir.path(), &plus(T0, 10)));
        let again = e.decide(&env1, at(&plus(T0, 11))).expect("s");
        assert!(
            matches!(again, Answer::Decided { repeat: true, ref decision, .. } if decision.allowed),
            "{again:?}"
        );
        let mut other = fx.order(1);
        other["order_id"] = "ord-1b".into();
        assert_eq!(
            codes(
                &e.decide(&fx.sign(&other, &fx.acme), at(&plus(T0, 12)))
                    .expect("s")
            ),
            ["replayed"]
        );
        let u = e.store.usage(TREATY, at(&plus(T0, 12))).expect("s");
        assert_eq!(
            (u.running, u.gpu_milli_hours_today, u.allowed),
            (1, 1_500, 1)
        );
        // Issued before the reopening (T0 + 10) plus the skew: state-too-new.
        let a = e
            .decide(&fx.sign(&fx.order(2), &fx.acme), at(&plus(T0, 13)))
            .expect("s");
        assert_eq!(codes(&a), ["state-too-new"]);
        let mut late = fx.order(3);
        late["issued_at"] = plus(T0, 311).into();
        late["not_after"] = plus(T0, 900).into();
        assert!(allowed(
            &e.decide(&fx.sign(&late, &fx.acme), at(&plus(T0, 311)))
                .expect("s")
        ));
    }

    /// An operator's clear forgets every nonce, decision and hold, and moves the birth: the
    /// order decided before it is refused (`state-too-new`, not a repeat and never allowed
    /// again); the clear survives a restart, and a crash after the cleared snapshot but
    /// before the journal was emptied brings none of the old state back.
    #[test]
    fn a_clear_forgets_the_state_and_never_reopens_the_replay_window() {
        let fx = Fx::new();
        let dir = tempfile::tempdir().expect("tmp");
        let env1 = fx.sign(&fx.order(1), &fx.acme);
        let journal = dir.path().join(journal::JOURNAL);
        let old_journal;
        {
            let e = fx.engine_with(open(dir.path(), "2029-12-31T00:00:00Z"));
            assert!(allowed(&e.decide(&env1, at(T0)).expect("s")));
            let before = e.store.stats(at(T0)).expect("s");
            assert_eq!(
                (before.nonces, before.decisions, before.reserved),
                (1, 1, 1)
            );
            old_journal = std::fs::read(&journal).expect("journal");
            assert!(!old_journal.is_empty());
            let birth = e.store.clear(at(&plus(T0, 1))).expect("clear");
            assert!(birth.unix() > before.birth && birth.unix() >= before.high_water);
            let after = e.store.stats(at(&plus(T0, 1))).expect("s");
            assert_eq!(
                (
                    after.nonces,
                    after.decisions,
                    after.reserved,
                    after.birth,
                    after.seq
                ),
                (0, 0, 0, birth.unix(), before.seq)
            );
            let u = e.store.usage(TREATY, at(&plus(T0, 1))).expect("s");
            assert_eq!((u.reserved, u.gpu_milli_hours_today, u.allowed), (0, 0, 0));
            // The same message again: not a repeat, not allowed.
            assert_eq!(
                codes(&e.decide(&env1, at(&plus(T0, 2))).expect("s")),
                ["state-too-new"]
            );
        }
        // A crash between the cleared snapshot and the emptied journal: the old events are
        // ones the snapshot "already holds" (its sequence number), skipped.
        std::fs::write(&journal, &old_journal).expect("put the old journal back");
        let e = fx.engine_with(open(dir.path(), &plus(T0, 3)));
        let s = e.store.stats(at(&plus(T0, 3))).expect("s");
        assert_eq!((s.nonces, s.decisions, s.reserved), (0, 0, 0), "{s:?}");
        assert_eq!(
            codes(&e.decide(&env1, at(&plus(T0, 4))).expect("s")),
            ["state-too-new"]
        );
    }

    /// A wiped store and a restored older copy both reopen a replay window unless birth
    /// closes it: the order decided after the backup is refused either way.
    #[test]
    fn a_wiped_store_or_a_restored_backup_never_accepts_a_used_nonce_again() {
        let fx = Fx::new();
        let dir = tempfile::tempdir().expect("tmp");
        let backup = tempfile::tempdir().expect("tmp");
        let env = fx.sign(&fx.order(1), &fx.acme);
        {
            let _ = open(dir.path(), "2029-12-31T00:00:00Z");
        }
        for f in [journal::SNAPSHOT, journal::JOURNAL] {
            std::fs::copy(dir.path().join(f), backup.path().join(f)).expect("backup");
        }
        {
            let e = fx.engine_with(open(dir.path(), "2029-12-31T00:00:00Z"));
            assert!(allowed(&e.decide(&env, at(T0)).expect("s")));
        }
        // Restored from the backup taken before the order: the nonce is unknown to it.
        for f in [journal::SNAPSHOT, journal::JOURNAL] {
            std::fs::copy(backup.path().join(f), dir.path().join(f)).expect("restore");
        }
        let e = fx.engine_with(open(dir.path(), &plus(T0, 60)));
        assert_eq!(
            codes(&e.decide(&env, at(&plus(T0, 61))).expect("s")),
            ["state-too-new"]
        );
        // Wiped.
        drop(e);
        std::fs::remove_dir_all(dir.path()).expect("wipe");
        let e = fx.engine_with(open(dir.path(), &plus(T0, 120)));
        assert_eq!(
            codes(&e.decide(&env, at(&plus(T0, 121))).expect("s")),
            ["state-too-new"]
        );
    }

    /// The clock's high-water mark is durable: reopened with a clock stepped back, nothing is
    /// decided until the clock is past the last decision; stepped forward, it decides.
    #[test]
    fn a_clock_stepped_back_across_a_restart_decides_nothing_until_it_catches_up() {
        let fx = Fx::new();
        let dir = tempfile::tempdir().expect("tmp");
        {
            let e = fx.engine_with(open(dir.path(), "2029-12-31T00:00:00Z"));
            assert!(allowed(
                &e.decide(&fx.sign(&fx.order(1), &fx.acme), at(T0))
                    .expect("s")
            ));
        }
        let e = fx.engine_with(open(dir.path(), &plus(T0, -3_600)));
        let mut o = fx.order(2);
        o["issued_at"] = plus(T0, -3_000).into();
        o["not_after"] = plus(T0, -2_900).into();
        let a = e
            .decide(&fx.sign(&o, &fx.acme), at(&plus(T0, -2_950)))
            .expect("s");
        assert_eq!(codes(&a), ["clock-behind"]);
    }

    /// A crash mid-append leaves a torn last frame: at every cut of it, the store reopens with
    /// the events before it, never half an event; damage before the last frame refuses to open.
    #[test]
    fn a_torn_journal_tail_is_cut_and_damage_before_it_refuses_to_open() {
        let fx = Fx::new();
        let dir = tempfile::tempdir().expect("tmp");
        let born = "2029-12-31T00:00:00Z";
        let jpath = dir.path().join(journal::JOURNAL);
        let (before, full) = {
            let e = fx.engine_with(open(dir.path(), born));
            assert!(allowed(
                &e.decide(&fx.sign(&fx.order(1), &fx.acme), at(T0))
                    .expect("s")
            ));
            let before = std::fs::read(&jpath).expect("journal");
            assert!(allowed(
                &e.decide(&fx.sign(&fx.order(2), &fx.acme), at(&plus(T0, 1)))
                    .expect("s")
            ));
            (before, std::fs::read(&jpath).expect("journal"))
        };
        let snapshot = std::fs::read(dir.path().join(journal::SNAPSHOT)).expect("snapshot");
        assert_eq!(journal::inspect(&jpath).expect("inspect").0, 2);
        for cut in before.len()..full.len() {
            std::fs::write(dir.path().join(journal::SNAPSHOT), &snapshot).expect("reset");
            std::fs::write(&jpath, &full[..cut]).expect("tear");
            let e = fx.engine_with(open(dir.path(), &plus(T0, 5)));
            let has2 = e.store.order("ord-2").expect("s").is_some();
            assert!(!has2, "cut at {cut}: a torn event was applied");
            assert!(e.store.order("ord-1").expect("s").is_some(), "cut at {cut}");
        }
        // A flipped byte inside the first of two frames: damage, not a torn tail.
        std::fs::write(dir.path().join(journal::SNAPSHOT), &snapshot).expect("reset");
        let mut bad = full.clone();
        bad[40] ^= 1;
        std::fs::write(&jpath, &bad).expect("damage");
        let err = JournalStore::open(dir.path(), at(&plus(T0, 6)))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("checksum"), "{err}");
        // A length prefix no writer could have made, before good frames: damage too.
        let mut huge = full.clone();
        huge[0] = 0xff;
        std::fs::write(dir.path().join(journal::SNAPSHOT), &snapshot).expect("reset");
        std::fs::write(&jpath, &huge).expect("damage");
        let err = JournalStore::open(dir.path(), at(&plus(T0, 6)))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("length fails its check"), "{err}");
        // Zeros after the last frame (what a power loss can leave): torn, both orders kept.
        let mut zeros = full.clone();
        zeros.extend(std::iter::repeat_n(0u8, 100));
        std::fs::write(dir.path().join(journal::SNAPSHOT), &snapshot).expect("reset");
        std::fs::write(&jpath, &zeros).expect("zeros");
        let e = fx.engine_with(open(dir.path(), &plus(T0, 6)));
        assert!(e.store.order("ord-2").expect("s").is_some());
        drop(e);
        // The honest twin: the whole journal reopens with both orders.
        std::fs::write(dir.path().join(journal::SNAPSHOT), &snapshot).expect("reset");
        std::fs::write(&jpath, &full).expect("restore");
        let e = fx.engine_with(open(dir.path(), &plus(T0, 7)));
        assert!(e.store.order("ord-2").expect("s").is_some());
    }

    /// A crash while a fold runs leaves the snapshot before it, the renamed journal and the new
    /// one: reopened, every event of both applies exactly once, in order; the two journals the
    /// wrong way round are refused as damage.
    #[test]
    fn a_crash_during_a_background_fold_loses_and_doubles_nothing() {
        let fx = Fx::new();
        let dir = tempfile::tempdir().expect("tmp");
        let born = "2029-12-31T00:00:00Z";
        let jpath = dir.path().join(journal::JOURNAL);
        let folding = dir.path().join(journal::JOURNAL_FOLDING);
        let (snapshot, first, all) = {
            let e = fx.engine_with(open(dir.path(), born));
            let snapshot = std::fs::read(dir.path().join(journal::SNAPSHOT)).expect("snapshot");
            for i in 1..=2 {
                assert!(allowed(
                    &e.decide(
                        &fx.sign(&fx.order(i), &fx.acme),
                        at(&plus(T0, i64::from(i)))
                    )
                    .expect("s")
                ));
            }
            let first = std::fs::read(&jpath).expect("journal");
            let r = e
                .ack(&fx.ack(1, "accepted", None, T0), at(&plus(T0, 3)))
                .expect("s");
            assert_eq!(r, AckAnswer::Applied(AckOutcome::Running));
            (snapshot, first, std::fs::read(&jpath).expect("journal"))
        };
        let check = |e: &Engine<JournalStore>| {
            let u = e.store.usage(TREATY, at(&plus(T0, 10))).expect("s");
            assert_eq!(
                (u.allowed, u.running, u.reserved, u.acks_accepted),
                (2, 1, 1, 1)
            );
        };
        // Stopped mid-fold: the old snapshot, the first two events renamed, the third after.
        std::fs::write(dir.path().join(journal::SNAPSHOT), &snapshot).expect("reset");
        std::fs::write(&folding, &first).expect("folding");
        std::fs::write(&jpath, &all[first.len()..]).expect("journal");
        {
            let e = fx.engine_with(open(dir.path(), &plus(T0, 10)));
            check(&e);
            assert!(!folding.exists(), "the opening folded it");
        }
        // The same, after the new snapshot was written but before the renamed journal went.
        std::fs::write(&folding, &first).expect("folding");
        std::fs::write(&jpath, b"").expect("journal");
        {
            let e = fx.engine_with(open(dir.path(), &plus(T0, 11)));
            check(&e);
        }
        // The journals swapped: the later events first is damage, not a replay.
        std::fs::write(dir.path().join(journal::SNAPSHOT), &snapshot).expect("reset");
        std::fs::write(&folding, &all[first.len()..]).expect("folding");
        std::fs::write(&jpath, &first).expect("journal");
        let err = JournalStore::open(dir.path(), at(&plus(T0, 12)))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("not this snapshot's"), "{err}");
    }

    /// Compaction runs beside the decisions: the journal is renamed and folded on a thread
    /// while new events go to a new journal, and every event survives a reopening.
    #[test]
    fn background_folds_keep_every_event_while_decisions_go_on() {
        let fx = Fx::new();
        let dir = tempfile::tempdir().expect("tmp");
        {
            let mut store = open(dir.path(), "2029-12-31T00:00:00Z");
            store.compact_after = 2;
            let mut e = fx.engine_with(store);
            e.bounds.reservation_ttl_seconds = 1;
            for i in 1..=40 {
                let a = e
                    .decide(
                        &fx.sign(&fx.order(i), &fx.acme),
                        at(&plus(T0, i64::from(i) * 2)),
                    )
                    .expect("s");
                assert!(matches!(a, Answer::Decided { .. }), "{i}");
            }
            e.store.wait_for_fold().expect("fold");
        }
        let e = fx.engine_with(open(dir.path(), &plus(T0, 100)));
        for i in 1..=40 {
            assert!(
                e.store.order(&format!("ord-{i}")).expect("s").is_some(),
                "{i}"
            );
        }
    }

    /// One process per state directory: a second opening is refused while the first holds it,
    /// and succeeds once it is closed.
    #[test]
    fn a_state_directory_is_held_by_one_store_at_a_time() {
        let dir = tempfile::tempdir().expect("tmp");
        let first = open(dir.path(), T0);
        let second = JournalStore::open(dir.path(), at(T0));
        assert!(
            matches!(second, Err(store::StoreError::Locked { .. })),
            "{:?}",
            second.err()
        );
        drop(first);
        assert!(JournalStore::open(dir.path(), at(T0)).is_ok());
    }

    /// Compaction folds the journal into the snapshot; a crash between writing the snapshot
    /// and emptying the journal replays nothing twice (events carry sequence numbers).
    #[test]
    fn compaction_and_a_crash_during_it_apply_every_event_exactly_once() {
        let fx = Fx::new();
        let dir = tempfile::tempdir().expect("tmp");
        let born = "2029-12-31T00:00:00Z";
        let jpath = dir.path().join(journal::JOURNAL);
        let journal_before;
        {
            let mut store = open(dir.path(), born);
            store.compact_after = 3;
            let e = fx.engine_with(store);
            for i in 1..=2 {
                assert!(allowed(
                    &e.decide(
                        &fx.sign(&fx.order(i), &fx.acme),
                        at(&plus(T0, i64::from(i)))
                    )
                    .expect("s")
                ));
            }
            journal_before = std::fs::read(&jpath).expect("journal");
            // The third event compacts: the journal is emptied into the snapshot.
            let r = e
                .ack(&fx.ack(1, "accepted", None, T0), at(&plus(T0, 3)))
                .expect("s");
            assert_eq!(r, AckAnswer::Applied(AckOutcome::Running));
            assert_eq!(std::fs::metadata(&jpath).expect("journal").len(), 0);
        }
        assert!(
            !dir.path().join(journal::JOURNAL_FOLDING).exists(),
            "the fold finished before the store closed"
        );
        // As if the crash came after the snapshot but before the journal was emptied.
        std::fs::write(&jpath, &journal_before).expect("un-truncate");
        let e = fx.engine_with(open(dir.path(), &plus(T0, 10)));
        let u = e.store.usage(TREATY, at(&plus(T0, 10))).expect("s");
        assert_eq!(
            (
                u.allowed,
                u.gpu_milli_hours_today,
                u.running,
                u.reserved,
                u.acks_accepted
            ),
            (2, 3_000, 1, 1, 1),
            "no event applied twice"
        );
    }
}
