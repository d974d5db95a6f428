//! What the agent reports: Prometheus text on `/metrics`, `/healthz` and `/readyz`, served on
//! a loopback address only. It reads the counters the loop updates; it never changes state.

use std::collections::BTreeMap;
use std::io::Write;

/// What `/metrics` reports (Prometheus text format).
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub last_success_unix: Option<i64>,
    pub applied_snapshot_version: Option<u64>,
    pub heartbeat_issued_unix: Option<i64>,
    pub refusals: BTreeMap<String, u64>,
    pub commands: BTreeMap<String, u64>,
    /// Pull durations: counts per upper bound (seconds), plus sum and count.
    pub pull_buckets: Vec<(f64, u64)>,
    pub pull_sum: f64,
    pub pull_count: u64,
}

const BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Metrics {
    pub fn observe_pull(&mut self, secs: f64) {
        if self.pull_buckets.is_empty() {
            self.pull_buckets = BUCKETS.iter().map(|b| (*b, 0)).collect();
        }
        for (b, n) in &mut self.pull_buckets {
            if secs <= *b {
                *n += 1;
            }
        }
        self.pull_sum += secs;
        self.pull_count += 1;
    }

    /// The exposition text at `now` (Unix seconds).
    pub fn render(&self, now: i64) -> String {
        let mut o = String::new();
        let gauge = |o: &mut String, name: &str, help: &str, v: Option<f64>| {
            o.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            if let Some(v) = v {
                o.push_str(&format!("{name} {v}\n"));
            }
        };
        gauge(
            &mut o,
            "treaty_agent_last_success_timestamp_seconds",
            "Unix time of the last successful pull.",
            self.last_success_unix.map(|x| x as f64),
        );
        gauge(
            &mut o,
            "treaty_agent_applied_snapshot_version",
            "Snapshot version of the applied state.",
            self.applied_snapshot_version.map(|x| x as f64),
        );
        gauge(
            &mut o,
            "treaty_agent_heartbeat_age_seconds",
            "Age of the heartbeat the applied state was accepted with.",
            self.heartbeat_issued_unix.map(|x| (now - x) as f64),
        );
        o.push_str("# HELP treaty_agent_refusals_total Pulls refused, by reason.\n# TYPE treaty_agent_refusals_total counter\n");
        // Every reason from zero: an alert on `increase()` sees the first refusal.
        let mut refusals = self.refusals.clone();
        for r in super::Refusal::REASONS {
            refusals.entry(r.to_owned()).or_default();
        }
        for (r, n) in &refusals {
            o.push_str(&format!(
                "treaty_agent_refusals_total{{reason=\"{r}\"}} {n}\n"
            ));
        }
        o.push_str("# HELP treaty_agent_commands_total Commands delivered, by op.\n# TYPE treaty_agent_commands_total counter\n");
        for (op, n) in &self.commands {
            o.push_str(&format!("treaty_agent_commands_total{{op=\"{op}\"}} {n}\n"));
        }
        o.push_str("# HELP treaty_agent_pull_duration_seconds Duration of a pull (fetch, verify, emit, deliver).\n# TYPE treaty_agent_pull_duration_seconds histogram\n");
        for (b, n) in &self.pull_buckets {
            o.push_str(&format!(
                "treaty_agent_pull_duration_seconds_bucket{{le=\"{b}\"}} {n}\n"
            ));
        }
        o.push_str(&format!(
            "treaty_agent_pull_duration_seconds_bucket{{le=\"+Inf\"}} {0}\ntreaty_agent_pull_duration_seconds_sum {1}\ntreaty_agent_pull_duration_seconds_count {0}\n",
            self.pull_count, self.pull_sum
        ));
        o
    }
}

/// Why the metrics endpoint could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: metrics are served on loopback only")]
    NotLoopback { addr: String },
}

/// Serves `/healthz` (alive), `/readyz` (a state has been applied) and `/metrics` on a
/// loopback address, from a background thread. Refuses non-loopback addresses.
pub fn serve_metrics(
    addr: &str,
    m: std::sync::Arc<std::sync::Mutex<Metrics>>,
) -> Result<std::net::SocketAddr, MetricsError> {
    let bind = |source| MetricsError::Bind {
        addr: addr.to_owned(),
        source,
    };
    let l = std::net::TcpListener::bind(addr).map_err(bind)?;
    let local = l.local_addr().map_err(bind)?;
    if !local.ip().is_loopback() {
        return Err(MetricsError::NotLoopback {
            addr: addr.to_owned(),
        });
    }
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            // Read the request head (it may arrive in several segments); closing with unread
            // bytes would reset the connection and lose the answer.
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match std::io::Read::read(&mut s, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&head);
            let path = req.split_whitespace().nth(1).unwrap_or("/");
            let snapshot = m.lock().map(|g| g.clone()).unwrap_or_default();
            let now = crate::time::now().unix();
            let (status, body) = match path {
                "/healthz" => ("200 OK", "ok\n".to_owned()),
                "/readyz" if snapshot.applied_snapshot_version.is_some() => {
                    ("200 OK", "ready\n".to_owned())
                }
                "/readyz" => (
                    "503 Service Unavailable",
                    "no approved state applied yet\n".to_owned(),
                ),
                "/metrics" => ("200 OK", snapshot.render(now)),
                _ => ("404 Not Found", "not found\n".to_owned()),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(local)
}
