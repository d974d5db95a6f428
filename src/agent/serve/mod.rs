//! `treaty-agent --serve`: the decision point over HTTP (docs/law.md § API).
//!
//! Owns the transport: the listener (loopback by default; elsewhere only with TLS and with
//! mutual TLS or bearer tokens), authentication and the role check per route, the limits
//! (body size, connections, request time, per-caller rate), the structured decision log, the
//! law's `/metrics`, `/healthz` and `/readyz`, and the drain on SIGTERM. What is answered is
//! [`crate::law::api`]'s; the law in force is [`live::Live`]'s. Decisions run on tokio's
//! blocking pool: each waits for the store's durable write before it is answered.
//!
//! Submodules: [`auth`] (tokens, client certificates, rates), [`live`] (the law in force).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::law::api::{self, Reply, Role, Route};
use crate::law::kpi::Kpis;
use crate::law::{AckAnswer, Answer};

pub mod auth;
pub mod live;

pub use auth::{Caller, RateLimit, TokenError, Tokens};
pub use live::{Live, LiveEngine, LiveError, SharedStore};

/// Failed authentications answered a second per address (then 429): a caller with the right
/// credential never fails, so this can be low.
pub const AUTH_FAILURES_PER_SECOND: u32 = 10;

/// The documented limits (docs/law.md § Limits), each a flag and an `agent.toml` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body, in bytes (an order with its attestation is a few KiB).
    pub max_body: usize,
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// Connections served at once from one IP address (before any authentication: one client
    /// cannot hold every slot); more from it are closed on accept.
    pub max_connections_per_address: usize,
    /// Time to read a request's head and body and answer it.
    pub request_timeout: Duration,
    /// Requests a second per caller (token, certificate or loopback address); bursts of as many.
    pub rate_per_second: u32,
    /// Time SIGTERM waits for requests in flight.
    pub drain_timeout: Duration,
    /// Treaties with series of their own on `/metrics` (the rest are `_other`).
    pub max_treaty_series: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 64 * 1024,
            max_connections: 512,
            max_connections_per_address: 64,
            request_timeout: Duration::from_secs(5),
            rate_per_second: 2_000,
            drain_timeout: Duration::from_secs(10),
            max_treaty_series: 1_000,
        }
    }
}

/// TLS material (PEM files).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates issued by this CA (mutual TLS); their subject's OU names
    /// the role.
    pub client_ca: Option<PathBuf>,
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub addr: String,
    pub tls: Option<TlsFiles>,
    pub tokens: Option<Tokens>,
    pub limits: Limits,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--serve {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--serve {addr}: not a loopback address, so TLS is required (--tls-cert and --tls-key)"
    )]
    NeedsTls { addr: String },
    #[error("--serve {addr}: not a loopback address, so callers must authenticate: mutual TLS (--client-ca) or bearer tokens (--tokens FILE or TREATY_AGENT_TOKENS)")]
    NeedsAuth { addr: String },
    #[error("{path}: {reason}")]
    Tls { path: String, reason: String },
    #[error("the server's runtime could not start: {0}")]
    Runtime(std::io::Error),
}

/// A running server.
pub struct Server {
    pub local: SocketAddr,
    /// Receives once the server has stopped after a SIGTERM or SIGINT and drained.
    pub stopped: std::sync::mpsc::Receiver<()>,
}

struct Ctx {
    live: Arc<Live>,
    tokens: Option<Tokens>,
    mtls: bool,
    limits: Limits,
    rate: RateLimit,
    kpis: Kpis,
    pull: Arc<Mutex<super::Metrics>>,
    refused_connections: std::sync::atomic::AtomicU64,
    /// Failed authentications, by address.
    auth_failures: RateLimit,
    in_flight: Arc<tokio::sync::Semaphore>,
}

/// Who a connection is before any request: its peer and, under mutual TLS, the roles and
/// fingerprint of its verified certificate.
#[derive(Debug, Clone)]
struct Conn {
    peer: SocketAddr,
    cert: Option<([u8; 32], Option<Role>)>,
}

fn tls_config(t: &TlsFiles) -> Result<rustls::ServerConfig, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let err = |p: &PathBuf, reason: String| ServeError::Tls {
        path: p.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert)
        .map_err(|e| err(&t.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(&t.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(err(&t.cert, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&t.key).map_err(|e| err(&t.key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&t.cert, e.to_string()))?;
    let builder = match &t.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| err(ca, e.to_string()))? {
                let c = c.map_err(|e| err(ca, e.to_string()))?;
                roots.add(c).map_err(|e| err(ca, e.to_string()))?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| err(ca, e.to_string()))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| err(&t.key, e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Starts the server on its own threads (a two-worker tokio runtime); returns once it listens.
pub fn start(
    cfg: ServeConfig,
    live: Arc<Live>,
    pull: Arc<Mutex<super::Metrics>>,
) -> Result<Server, ServeError> {
    let bind = |source| ServeError::Bind {
        addr: cfg.addr.clone(),
        source,
    };
    let std_listener = std::net::TcpListener::bind(&cfg.addr).map_err(bind)?;
    let local = std_listener.local_addr().map_err(bind)?;
    if !local.ip().is_loopback() {
        if cfg.tls.is_none() {
            return Err(ServeError::NeedsTls { addr: cfg.addr });
        }
        let mtls = cfg.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
        if !mtls && cfg.tokens.is_none() {
            return Err(ServeError::NeedsAuth { addr: cfg.addr });
        }
    }
    std_listener.set_nonblocking(true).map_err(bind)?;
    let acceptor = match &cfg.tls {
        Some(t) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(t)?))),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_name("treaty-serve")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let ctx = Arc::new(Ctx {
        live,
        mtls: cfg.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        tokens: cfg.tokens,
        limits: cfg.limits,
        rate: RateLimit::new(cfg.limits.rate_per_second),
        auth_failures: RateLimit::new(AUTH_FAILURES_PER_SECOND),
        kpis: Kpis::new(cfg.limits.max_treaty_series),
        pull,
        refused_connections: std::sync::atomic::AtomicU64::new(0),
        in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
    });
    let (tx, stopped) = std::sync::mpsc::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("treaty-serve".into())
        .spawn(move || {
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                accept_loop(listener, acceptor, ctx).await;
            });
            let _ = tx.send(());
        })
        .map_err(ServeError::Runtime)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Server { local, stopped }),
        Ok(Err(e)) => Err(ServeError::Runtime(e)),
        Err(_) => Err(ServeError::Runtime(std::io::Error::other(
            "the server thread ended before listening",
        ))),
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    ctx: Arc<Ctx>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install the SIGTERM handler: not serving");
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(ctx.limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Over the connection limit: closed at once, counted.
            ctx.refused_connections
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            drop(tcp);
            continue;
        };
        let Some(address_slot) =
            per_address.take(peer.ip(), ctx.limits.max_connections_per_address)
        else {
            // Over this address's share: closed at once, counted the same way.
            ctx.refused_connections
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let ctx = ctx.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let (_permit, _address_slot) = (permit, address_slot);
            let timeout = ctx.limits.request_timeout;
            match acceptor {
                None => {
                    let conn = Conn { peer, cert: None };
                    serve_conn(TokioIo::new(tcp), conn, ctx, watcher).await;
                }
                Some(acc) => {
                    let Ok(Ok(tls)) = tokio::time::timeout(timeout, acc.accept(tcp)).await else {
                        return;
                    };
                    let cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| {
                            let fp: [u8; 32] = sha2::Digest::finalize(
                                <sha2::Sha256 as sha2::Digest>::new_with_prefix(c.as_ref()),
                            )
                            .into();
                            (fp, auth::certificate_role(c.as_ref()))
                        });
                    let conn = Conn { peer, cert };
                    serve_conn(TokioIo::new(tls), conn, ctx, watcher).await;
                }
            }
        });
    }
    // Closed first: a connection after SIGTERM is refused at once rather than left waiting.
    drop(listener);
    tracing::info!(
        in_flight = graceful.count(),
        "stopping: no new connections; draining requests in flight"
    );
    let drain = ctx.limits.drain_timeout;
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timed out after {drain:?}: closing what is left");
    }
}

/// Connections open per IP address (entries go when their last connection closes, so the map
/// holds at most `max_connections` addresses).
#[derive(Debug, Default)]
struct PerAddress {
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One connection's share of its address's count, given back when it closes.
struct AddressSlot {
    of: Arc<PerAddress>,
    ip: std::net::IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: std::net::IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            of: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.of.open.lock() {
            if let Some(n) = open.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.ip);
                }
            }
        }
    }
}

async fn serve_conn<I>(
    io: TokioIo<I>,
    conn: Conn,
    ctx: Arc<Ctx>,
    w: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let timeout = ctx.limits.request_timeout;
    let svc = hyper::service::service_fn(move |req| {
        let (ctx, conn) = (ctx.clone(), conn.clone());
        async move {
            let reply = match tokio::time::timeout(timeout, handle(req, &conn, &ctx)).await {
                Ok(r) => r,
                Err(_) => Reply::error(
                    408,
                    "request-timeout",
                    &format!("the request was not read and answered within {timeout:?}"),
                ),
            };
            Ok::<_, std::convert::Infallible>(to_response(reply))
        }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .max_buf_size(64 * 1024);
    let _ = w.watch(b.serve_connection(io, svc)).await;
}

fn to_response(r: Reply) -> Response<Full<Bytes>> {
    let content_type = r.content_type;
    let mut resp = Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(r.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

/// Who the caller is and whether the route admits it.
fn authorise(
    req: &Request<Incoming>,
    route: &Route,
    conn: &Conn,
    ctx: &Ctx,
) -> Result<Caller, Reply> {
    let Some(allowed) = route.roles() else {
        return Ok(Caller::Peer(conn.peer.ip()));
    };
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let (roles, caller): (Vec<Role>, Caller) = match (&ctx.tokens, bearer, &conn.cert) {
        (Some(t), Some(b), _) => match t.check(b) {
            Some((role, i)) => (vec![role], Caller::Token(i)),
            None => {
                return Err(Reply::error(
                    401,
                    "unauthorized",
                    "the bearer token is not valid",
                ))
            }
        },
        // A token, when one is sent, is the credential; else the certificate's one role.
        (_, _, Some((fp, role))) if ctx.mtls => {
            (role.iter().copied().collect(), Caller::Certificate(*fp))
        }
        (Some(_), None, _) => {
            return Err(Reply::error(
                401,
                "unauthorized",
                "a bearer token is required (Authorization: Bearer TOKEN)",
            ))
        }
        // No credential configured: only reachable on loopback (start refuses otherwise),
        // where every local caller holds every role.
        (None, _, _) if !ctx.mtls => (Role::ALL.to_vec(), Caller::Peer(conn.peer.ip())),
        (None, _, _) => {
            return Err(Reply::error(
                401,
                "unauthorized",
                "a client certificate is required",
            ))
        }
    };
    if roles.iter().any(|r| allowed.contains(r)) {
        Ok(caller)
    } else {
        let want: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        Err(Reply::error(
            403,
            "forbidden",
            &format!("this route is for the {} role", want.join(" or ")),
        ))
    }
}

async fn read_body(req: Request<Incoming>, max: usize) -> Result<Bytes, Reply> {
    let too_large = || {
        Reply::error(
            413,
            "request-too-large",
            &format!("the body is larger than {max} bytes"),
        )
    };
    if req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
    {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(e) => Err(Reply::error(
            400,
            "request-unreadable",
            &format!("the body could not be read: {e}"),
        )),
    }
}

async fn handle(req: Request<Incoming>, conn: &Conn, ctx: &Arc<Ctx>) -> Reply {
    let route = Route::of(req.method().as_str(), req.uri().path());
    let caller = match authorise(&req, &route, conn, ctx) {
        Ok(c) => c,
        // Failed authentication is rate-limited by address, far below the callers' rate: a
        // guesser gets 429s, and never learns more than one answer per try.
        Err(r) => {
            return match ctx.auth_failures.admit(&Caller::Peer(conn.peer.ip())) {
                Ok(()) => r,
                Err(wait) => Reply::error(
                    429,
                    "rate-limited",
                    &format!(
                        "more than {AUTH_FAILURES_PER_SECOND} failed authentications a second from this address; retry in {wait} s"
                    ),
                ),
            }
        }
    };
    if route.roles().is_some() {
        if let Err(wait) = ctx.rate.admit(&caller) {
            return Reply::error(
                429,
                "rate-limited",
                &format!(
                    "more than {} requests a second from this caller; retry in {wait} s",
                    ctx.limits.rate_per_second
                ),
            );
        }
    }
    match route {
        Route::Healthz => return Reply::json(200, &serde_json::json!({"status": "ok"})),
        Route::Readyz => {
            return match ctx.live.ready(crate::time::now()) {
                Ok(()) => Reply::json(200, &serde_json::json!({"ready": true})),
                Err(why) => Reply::error(503, "not-ready", &why),
            }
        }
        Route::Metrics => {
            // Reads every treaty's usage from the store: off the async workers.
            let ctx = ctx.clone();
            return tokio::task::spawn_blocking(move || metrics(&ctx))
                .await
                .unwrap_or_else(|e| Reply::error(500, "internal", &format!("metrics: {e}")));
        }
        _ => {}
    }
    let body = if route.has_body() {
        match read_body(req, ctx.limits.max_body).await {
            Ok(b) => b,
            Err(r) => return r,
        }
    } else {
        Bytes::new()
    };
    // At most this many decisions wait for the store at once; more are turned away at once
    // rather than queued without bound (each queued one holds its body).
    let Ok(_slot) = ctx.in_flight.clone().try_acquire_owned() else {
        ctx.kpis.refused("overloaded");
        return Reply::error(
            503,
            "overloaded",
            &format!(
                "{MAX_IN_FLIGHT} requests are already waiting for the state store; retry shortly"
            ),
        );
    };
    let ctx2 = ctx.clone();
    // The engine waits for the store's durable write: off the async workers. The time is read
    // there, when the request is judged (not when it arrived: a request that waited for its
    // body or a thread must not be judged in the past). The answer is logged and counted there
    // too, so a decision whose caller timed out is still on record.
    let outcome = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let now = crate::time::now();
        let engine = ctx2.live.engine();
        let e = engine.as_deref();
        match (&route, e) {
            (Route::Decide, Some(e)) => match e.decide(&body, now) {
                Ok(a) => {
                    let known = e.law.treaties.contains_key(decision_treaty(&a));
                    log_decision(&ctx2, &a, started.elapsed().as_secs_f64(), now, known);
                    api::decide_reply(&a)
                }
                Err(err) => store_failed(&ctx2, &err.to_string()),
            },
            (Route::Ack, Some(e)) => match e.ack(&body, now) {
                Ok(a) => {
                    log_ack(&ctx2, &a, &body, now);
                    api::ack_reply(&a)
                }
                Err(err) => store_failed(&ctx2, &err.to_string()),
            },
            _ => api::respond(e, &route, &body, now),
        }
    })
    .await;
    outcome.unwrap_or_else(|e| {
        Reply::error(500, "internal", &format!("the decision task failed: {e}"))
    })
}

fn metrics(ctx: &Ctx) -> Reply {
    let now = crate::time::now();
    let engine = ctx.live.engine();
    let mut body = ctx
        .pull
        .lock()
        .map(|m| m.render(now.unix()))
        .unwrap_or_default();
    let receipts = engine.as_deref().and_then(|e| e.receipts.as_deref());
    body.push_str(&ctx.kpis.render(
        engine.as_deref().map(|e| &e.law),
        ctx.live.store().as_ref(),
        now,
        receipts,
    ));
    if let Some(r) = receipts {
        let (written, checkpointed) = r.progress();
        body.push_str(&format!(
            "# HELP treaty_law_receipts_written The last provenance receipt written (its sequence number).\n# TYPE treaty_law_receipts_written gauge\ntreaty_law_receipts_written {written}\n# HELP treaty_law_receipts_checkpointed The last receipt under a checkpoint this agent signed; the difference is the receipts' lag.\n# TYPE treaty_law_receipts_checkpointed gauge\ntreaty_law_receipts_checkpointed {checkpointed}\n"
        ));
    }
    let store_ok = ctx.live.store().healthy().is_ok();
    let ready = ctx.live.ready(now).is_ok();
    body.push_str(&format!(
        "# HELP treaty_law_store_healthy Whether the replay and quota state can record a change now (1) or not (0: every order is answered 503).\n# TYPE treaty_law_store_healthy gauge\ntreaty_law_store_healthy {}\n# HELP treaty_law_ready Whether an order could be decided now (1): a law in force, fresh, the store healthy, the clock not behind it.\n# TYPE treaty_law_ready gauge\ntreaty_law_ready {}\n",
        u8::from(store_ok),
        u8::from(ready)
    ));
    body.push_str(&format!(
        "# HELP treaty_agent_connections_refused_total Connections closed on accept over --max-connections or --max-connections-per-address.\n# TYPE treaty_agent_connections_refused_total counter\ntreaty_agent_connections_refused_total {}\n",
        ctx.refused_connections.load(std::sync::atomic::Ordering::Relaxed)
    ));
    Reply::metrics(body)
}

/// Decisions waiting for the state store at once (the rest are `503 overloaded`).
pub const MAX_IN_FLIGHT: usize = 256;

fn decision_treaty(a: &Answer) -> &str {
    match a {
        Answer::Decided { decision, .. } => &decision.treaty_id,
        _ => "",
    }
}

fn store_failed(ctx: &Ctx, e: &str) -> Reply {
    tracing::error!("state store: {e}");
    ctx.kpis.refused("store-unavailable");
    Reply::error(
        503,
        "store-unavailable",
        &format!("the state store cannot answer: {e}"),
    )
}

/// One structured log line per decision (`target: treaty_agent::decision`), and the KPIs.
fn log_decision(ctx: &Ctx, a: &Answer, took: f64, now: crate::time::Instant, known: bool) {
    let took_us = (took * 1e6) as u64;
    match a {
        Answer::Decided {
            decision: d,
            repeat,
            failover,
        } => {
            let codes: Vec<&str> = d.denials.iter().map(|x| x.code.as_str()).collect();
            if !repeat {
                ctx.kpis.decided(
                    known.then_some(d.treaty_id.as_str()),
                    &d.order_id,
                    d.allowed,
                    &codes,
                    took,
                    now,
                );
                if failover.is_some() {
                    ctx.kpis.failed_over(known.then_some(d.treaty_id.as_str()));
                }
            }
            tracing::info!(
                target: "treaty_agent::decision",
                order_id = %d.order_id,
                treaty_id = %d.treaty_id,
                requester = %d.requester,
                allowed = d.allowed,
                repeat = *repeat,
                codes = %codes.join(","),
                commit = %d.commit,
                root_version = d.root_version,
                failover = %failover.as_ref().map_or("", |f| f.treaty_id.as_str()),
                took_us,
                "{} {}",
                if d.allowed { "allowed" } else { "denied" },
                d.order_id
            );
        }
        Answer::Refused(d) | Answer::Unauthenticated(d) => {
            ctx.kpis.refused(&d.code);
            tracing::info!(
                target: "treaty_agent::decision",
                allowed = false,
                decided = false,
                codes = %d.code,
                took_us,
                "refused: {}",
                d.code
            );
        }
    }
}

fn log_ack(ctx: &Ctx, a: &AckAnswer, body: &[u8], now: crate::time::Instant) {
    match a {
        AckAnswer::Applied(outcome) => {
            // Applied: the envelope was verified, so its payload parses.
            let ids = crate::law::signed::open(body, crate::law::message::Kind::Ack)
                .ok()
                .and_then(|e| crate::law::message::Ack::parse(&e.payload).ok());
            if let Some(ack) = ids {
                ctx.kpis.acked(&ack.treaty_id, &ack.order_id, *outcome, now);
                tracing::info!(
                    target: "treaty_agent::ack",
                    order_id = %ack.order_id,
                    treaty_id = %ack.treaty_id,
                    outcome = ?outcome,
                    "ack {:?} {}",
                    outcome,
                    ack.order_id
                );
            }
        }
        AckAnswer::Refused(d) | AckAnswer::Unauthenticated(d) => {
            ctx.kpis.refused(&d.code);
            tracing::info!(target: "treaty_agent::ack", codes = %d.code, "ack refused: {}", d.code);
        }
    }
}
