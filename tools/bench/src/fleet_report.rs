//! The war game's report for a person: one block per phase, what began it, and its figures.

use crate::cli::output::say;
use treaty_bench::fleet::{Phase, Report};

fn codes(c: &[(String, usize)]) -> String {
    if c.is_empty() {
        return "none".into();
    }
    c.iter()
        .take(4)
        .map(|(c, n)| format!("{c} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn block(p: &Phase, effect: Option<&str>) {
    say!(
        "{}-{}  {}{}",
        p.sim_from,
        p.sim_to,
        p.after,
        effect.map(|e| format!(": {e}")).unwrap_or_default()
    );
    say!(
        "  {} orders, {:.1} decisions/s, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} requests, {:.1} s real)",
        p.orders,
        p.decisions_per_second,
        p.latency_ms.p50,
        p.latency_ms.p99,
        p.latency_ms.max,
        p.latency_ms.n,
        p.real_seconds
    );
    say!(
        "  allowed {}, denied {} ({}); answered 503 {} time(s) ({}), undecided {}",
        p.allowed,
        p.denied,
        codes(&p.codes),
        p.unavailable,
        codes(&p.unavailable_codes),
        p.undecided
    );
    say!(
        "  failover: {} offered, {} new orders sent, {} allowed; replays refused {}/{}; resubmissions answered from the record {}/{}",
        p.failovers_offered,
        p.failover_orders,
        p.failover_allowed,
        p.replays_refused,
        p.replays_sent,
        p.repeats_answered,
        p.repeats_sent
    );
    say!(
        "  fill rate {:.3}; ACKs applied {}, refused {}; receipts written {} for {} answered decisions and ACKs; send lag p99 {:.0} ms",
        p.fill_rate,
        p.acks_applied,
        codes(&p.acks_refused),
        p.receipts_written,
        p.receipted_answers,
        p.send_lag_p99_ms
    );
}

pub fn print(r: &Report) {
    say!(
        "war game: {} agents on one Redis, the simulated day {} at {}x ({:.0} s real), seed {:#x}",
        r.agents,
        r.sim_day,
        r.rate,
        r.real_seconds,
        r.seed
    );
    for p in &r.phases {
        let effect = r
            .effects
            .iter()
            .find(|(e, _)| *e == p.after)
            .map(|(_, what)| what.as_str());
        block(p, effect);
    }
    block(&r.total, None);
    say!(
        "receipts at the end: {} written, {} under a signed checkpoint (the revocation's {} probe orders included)",
        r.receipts_written,
        r.receipts_checkpointed,
        r.probes
    );
    say!(
        "invariants: nonces allowed twice {}; the revocation in force at every agent {}; orders of the revoked treaty allowed after that {}",
        r.nonces_allowed_twice,
        r.revocation_applied,
        r.allowed_after_revocation_applied
    );
    for n in &r.notes {
        say!("note: {n}");
    }
}
