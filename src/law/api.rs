//! The decision point's HTTP API without the transport (docs/law.md § API): which route a
//! request names, which caller role may use it, and the status and JSON body of every answer.
//!
//! Owns the mapping from an [`Answer`] or [`AckAnswer`] to an HTTP status (a decision, allow or
//! deny, is `200`; a message that could not be decided is a `4xx` carrying its code; a state that
//! cannot decide is `503`) and the shape of the bodies. The transport (TLS, authentication,
//! limits, draining) lives in the agent (`agent::serve`), which calls [`respond`] with the
//! caller's role already established; everything here is a pure function of the engine's
//! answer, so it is tested without a socket.

use serde::Serialize;

use super::store::{LawStore, StoreError};
use super::{AckAnswer, Answer, Decision, DenialRecord, Engine};
use crate::time::Instant;

/// Who a caller is, by what its credential grants (a bearer token's role, or the role in its
/// client certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Submits orders and reads their decisions.
    Dispatcher,
    /// Sends ACKs and completions.
    Provider,
    /// Reads usage, decisions and metrics.
    Operator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Dispatcher, Role::Provider, Role::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Dispatcher => "dispatcher",
            Role::Provider => "provider",
            Role::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A request's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Decide,
    Ack,
    Order(String),
    Usage(String),
    Healthz,
    Readyz,
    Metrics,
    /// A known path with another method.
    WrongMethod(&'static str),
    NotFound,
}

/// The longest order or treaty id in a path (ids in messages are bounded the same way).
const MAX_ID: usize = 128;

fn id_segment(s: &str) -> Option<String> {
    (!s.is_empty()
        && s.len() <= MAX_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')))
    .then(|| s.to_owned())
}

impl Route {
    /// The route of `method` and `path` (the query string, if any, is ignored).
    pub fn of(method: &str, path: &str) -> Route {
        let path = path.split('?').next().unwrap_or_default();
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (get, post) = (method == "GET", method == "POST");
        match segs.as_slice() {
            ["v1", "decide"] if post => Route::Decide,
            ["v1", "decide"] => Route::WrongMethod("POST"),
            ["v1", "acks"] if post => Route::Ack,
            ["v1", "acks"] => Route::WrongMethod("POST"),
            ["v1", "orders", id] if get => id_segment(id).map_or(Route::NotFound, Route::Order),
            ["v1", "treaties", id, "usage"] if get => {
                id_segment(id).map_or(Route::NotFound, Route::Usage)
            }
            ["v1", "orders", _] | ["v1", "treaties", _, "usage"] => Route::WrongMethod("GET"),
            ["healthz"] if get => Route::Healthz,
            ["readyz"] if get => Route::Readyz,
            ["metrics"] if get => Route::Metrics,
            ["healthz"] | ["readyz"] | ["metrics"] => Route::WrongMethod("GET"),
            _ => Route::NotFound,
        }
    }

    /// The roles that may use this route (`None`: anyone, as liveness and readiness probes).
    pub fn roles(&self) -> Option<&'static [Role]> {
        match self {
            Route::Decide => Some(&[Role::Dispatcher]),
            Route::Ack => Some(&[Role::Provider]),
            Route::Order(_) => Some(&[Role::Dispatcher, Role::Operator]),
            Route::Usage(_) | Route::Metrics => Some(&[Role::Operator]),
            Route::Healthz | Route::Readyz | Route::WrongMethod(_) | Route::NotFound => None,
        }
    }

    /// Whether the route carries a body to read (POST routes).
    pub fn has_body(&self) -> bool {
        matches!(self, Route::Decide | Route::Ack)
    }

    /// A short name for logs and metrics (never the ids a caller sent).
    pub fn name(&self) -> &'static str {
        match self {
            Route::Decide => "decide",
            Route::Ack => "acks",
            Route::Order(_) => "orders",
            Route::Usage(_) => "usage",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::WrongMethod(_) => "wrong-method",
            Route::NotFound => "not-found",
        }
    }
}

/// An answer to send: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

impl Reply {
    /// A JSON body.
    pub fn json<T: Serialize>(status: u16, v: &T) -> Reply {
        let mut body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
        body.push(b'\n');
        Reply {
            status,
            body,
            content_type: "application/json",
        }
    }

    /// Prometheus text.
    pub fn metrics(body: String) -> Reply {
        Reply {
            status: 200,
            body: body.into_bytes(),
            content_type: "text/plain; version=0.0.4",
        }
    }

    /// An error of the transport or the API (not a decision): `{"error": {code, message}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        #[derive(Serialize)]
        struct E<'a> {
            code: &'a str,
            message: String,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            error: E<'a>,
        }
        Reply::json(
            status,
            &Body {
                error: E {
                    code,
                    message: crate::text::escape(message).into_owned(),
                },
            },
        )
    }

    fn denied(status: u16, d: DenialRecord) -> Reply {
        #[derive(Serialize)]
        struct Body {
            allowed: bool,
            denials: Vec<DenialRecord>,
        }
        Reply::json(
            status,
            &Body {
                allowed: false,
                denials: vec![d],
            },
        )
    }
}

/// A decision as answered: the recorded decision and whether it is a resubmission's.
#[derive(Debug, Serialize)]
struct Decided<'a> {
    #[serde(flatten)]
    decision: &'a Decision,
    repeat: bool,
    /// Where the order may go instead (docs/law.md § Failover); absent when nowhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    failover: Option<&'a super::Failover>,
}

/// The status of a message that was not decided, by its code.
fn refused_status(code: &str) -> u16 {
    match code {
        "replayed" | "order-id-reused" | "ack-conflicts" | "ack-other-order" => 409,
        "state-stale" | "clock-behind" => 503,
        "order-unknown" => 404,
        "issued-in-future"
        | "order-expired"
        | "order-outlives-nonce"
        | "ack-from-future"
        | "reservation-expired"
        | "job-not-running"
        | "job-timed-out" => 422,
        _ => 400,
    }
}

/// The reply to an order's answer.
pub fn decide_reply(a: &Answer) -> Reply {
    match a {
        // A message that is not an envelope at all is malformed (400); one whose signature or
        // signer fails is forbidden (403).
        Answer::Unauthenticated(d) if d.code == "order-malformed" => Reply::denied(400, d.clone()),
        Answer::Unauthenticated(d) => Reply::denied(403, d.clone()),
        Answer::Refused(d) => Reply::denied(refused_status(&d.code), d.clone()),
        Answer::Decided {
            decision,
            repeat,
            failover,
        } => Reply::json(
            200,
            &Decided {
                decision,
                repeat: *repeat,
                failover: failover.as_ref(),
            },
        ),
    }
}

/// The reply to an ACK's answer.
pub fn ack_reply(a: &AckAnswer) -> Reply {
    #[derive(Serialize)]
    struct Applied {
        outcome: super::store::AckOutcome,
    }
    match a {
        AckAnswer::Unauthenticated(d) => Reply::denied(403, d.clone()),
        AckAnswer::Refused(d) => Reply::denied(refused_status(&d.code), d.clone()),
        AckAnswer::Applied(outcome) => Reply::json(200, &Applied { outcome: *outcome }),
    }
}

fn store_reply(e: &StoreError) -> Reply {
    Reply::error(
        503,
        "store-unavailable",
        &format!("the state store cannot answer: {e}"),
    )
}

/// A treaty's usage as `GET /v1/treaties/ID/usage` answers it: the counters and, beside them,
/// the quota they count against and what remains.
#[derive(Debug, Serialize)]
struct UsageBody<'a> {
    treaty_id: &'a str,
    at: String,
    #[serde(flatten)]
    usage: super::store::TreatyUsage,
    gpu_milli_hours_per_day: u64,
    gpu_milli_hours_remaining: u64,
    concurrent_jobs: u64,
    concurrent_jobs_remaining: u64,
}

/// Answers a request whose route is `route` and whose caller was authenticated and authorised
/// for it, with `engine` the law in force (`None`: no approved state applied yet).
pub fn respond<S: LawStore>(
    engine: Option<&Engine<S>>,
    route: &Route,
    body: &[u8],
    now: Instant,
) -> Reply {
    let Some(e) = engine else {
        return Reply::error(
            503,
            "state-unavailable",
            "no approved state has been applied yet: nothing is decided",
        );
    };
    match route {
        Route::Decide => match e.decide(body, now) {
            Ok(a) => decide_reply(&a),
            Err(err) => store_reply(&err),
        },
        Route::Ack => match e.ack(body, now) {
            Ok(a) => ack_reply(&a),
            Err(err) => store_reply(&err),
        },
        Route::Order(id) => match e.lookup(id, now) {
            Ok(Some(d)) => Reply::json(
                200,
                &Decided {
                    decision: &d,
                    repeat: true,
                    failover: None,
                },
            ),
            Ok(None) => Reply::error(
                404,
                "order-unknown",
                &format!("no decision on order {id:?}"),
            ),
            Err(err) => store_reply(&err),
        },
        Route::Usage(id) => {
            let Some(t) = e.law.treaties.get(id) else {
                return Reply::error(404, "treaty-unknown", &format!("no approved treaty {id:?}"));
            };
            match e.store.usage(id, now) {
                Ok(u) => Reply::json(
                    200,
                    &UsageBody {
                        treaty_id: id,
                        at: crate::time::format(now),
                        usage: u,
                        gpu_milli_hours_per_day: t.gpu_milli_hours_per_day,
                        gpu_milli_hours_remaining: t
                            .gpu_milli_hours_per_day
                            .saturating_sub(u.gpu_milli_hours_today),
                        concurrent_jobs: t.concurrent_jobs,
                        concurrent_jobs_remaining: t
                            .concurrent_jobs
                            .saturating_sub(u.reserved.saturating_add(u.running)),
                    },
                ),
                Err(err) => store_reply(&err),
            }
        }
        Route::Healthz | Route::Readyz | Route::Metrics => {
            Reply::error(500, "internal", "served by the transport")
        }
        Route::WrongMethod(m) => Reply::error(
            405,
            "method-not-allowed",
            &format!("this path takes {m} only"),
        ),
        Route::NotFound => Reply::error(404, "not-found", "no such path"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_their_roles() {
        let rows: &[(&str, &str, Route, Option<&[Role]>)] = &[
            (
                "POST",
                "/v1/decide",
                Route::Decide,
                Some(&[Role::Dispatcher]),
            ),
            ("GET", "/v1/decide", Route::WrongMethod("POST"), None),
            ("POST", "/v1/acks", Route::Ack, Some(&[Role::Provider])),
            (
                "GET",
                "/v1/orders/ord-1",
                Route::Order("ord-1".into()),
                Some(&[Role::Dispatcher, Role::Operator]),
            ),
            (
                "GET",
                "/v1/treaties/AURORA-AKASH-001/usage?x=1",
                Route::Usage("AURORA-AKASH-001".into()),
                Some(&[Role::Operator]),
            ),
            ("GET", "/v1/orders/a%2Fb", Route::NotFound, None),
            ("GET", "/v1/orders/", Route::NotFound, None),
            ("GET", "/metrics", Route::Metrics, Some(&[Role::Operator])),
            ("GET", "/readyz", Route::Readyz, None),
            ("GET", "/healthz", Route::Healthz, None),
            ("DELETE", "/healthz", Route::WrongMethod("GET"), None),
            ("GET", "/v1/../metrics", Route::NotFound, None),
        ];
        for (m, p, route, roles) in rows {
            let r = Route::of(m, p);
            assert_eq!(&r, route, "{m} {p}");
            assert_eq!(r.roles(), *roles, "{m} {p}");
        }
        let long = format!("/v1/orders/{}", "a".repeat(MAX_ID + 1));
        assert_eq!(Route::of("GET", &long), Route::NotFound);
    }

    #[test]
    fn undecided_messages_are_4xx_with_their_code_and_decisions_are_200() {
        let d = |code: &str| DenialRecord {
            code: code.into(),
            message: "m".into(),
            asked: None,
            allowed: None,
            remaining: None,
        };
        for (code, status) in [
            ("order-malformed", 400),
            ("replayed", 409),
            ("order-id-reused", 409),
            ("order-expired", 422),
            ("issued-in-future", 422),
            ("state-stale", 503),
            ("clock-behind", 503),
        ] {
            let r = decide_reply(&Answer::Refused(d(code)));
            assert_eq!(r.status, status, "{code}");
            let v = crate::json::parse_value(&r.body).expect("json");
            assert_eq!(v["allowed"], false);
            assert_eq!(v["denials"][0]["code"], code);
        }
        let r = decide_reply(&Answer::Unauthenticated(d("order-signer-unknown")));
        assert_eq!(r.status, 403);
        let r = Reply::error(401, "unauthorized", "bad\u{1b}[31m");
        assert!(!String::from_utf8_lossy(&r.body).contains('\u{1b}'));
    }
}
