//! `treaty-bench gen | verify`: the verification benchmark (figures, never pass/fail on speed).

use anyhow::Context;
use std::path::PathBuf;

use crate::cli::output::say;
#[cfg(feature = "sim-clock")]
use crate::cli::output::tell;
use crate::Exit;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write and commit a synthetic governance repository of N treaties (3 hybrid signers each,
    /// across two required groups).
    Gen {
        n: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// On a generated repository: gate a one-treaty pull request, against plain git commands.
    Gate {
        dir: PathBuf,
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// The no-op guard's false-positive rate on a labelled corpus of real public histories
    /// (`--corpus`, against the pre-issue-13 classifier as baseline), and its errors on a
    /// synthetic history of labelled changes.
    #[command(
        after_help = "Example:\n  treaty-bench noop --corpus bench/noop-corpus.tsv --mirrors /work/.mirror\n\nExit: 0 no false positive, 1 a false positive or an unlabelled flag, 2 the corpus or a mirror is missing."
    )]
    Noop {
        /// The labelled corpus (`bench/noop-corpus.tsv`): scopes and labels of public commits.
        #[arg(long, requires = "mirrors")]
        corpus: Option<PathBuf>,
        /// The directory holding the corpus repositories as bare mirrors (`OWNER+NAME/repo`).
        #[arg(long, requires = "corpus")]
        mirrors: Option<PathBuf>,
        /// Also list which first-parent commits of this repository's history the guard flags
        /// (unlabelled: a list to review, not a false-positive rate).
        #[arg(long)]
        history: Option<PathBuf>,
        /// Also generate and judge this many labelled synthetic commits (in a temp dir).
        #[arg(long, default_value_t = 400)]
        synthetic: usize,
        #[arg(long, default_value_t = 0x5eed)]
        seed: u64,
    },
    /// The agent benchmark on a generated repository: incremental pull after one upstream
    /// change vs a full verify, an unchanged poll, and a fleet against one git daemon.
    #[command(
        after_help = "Example:\n  treaty-bench gen 10000 --out /tmp/b10k && treaty-bench agent /tmp/b10k --work /tmp/ab-agent --fleet 50"
    )]
    Agent {
        dir: PathBuf,
        #[arg(long)]
        work: PathBuf,
        #[arg(long, default_value_t = 50)]
        fleet: usize,
        #[arg(long, value_enum, default_value_t)]
        format: crate::Format,
    },
    /// The audit-log benchmark: N in-memory appends, persisting per batch size, proofs, and a
    /// full verify against SHA-256 over the same bytes.
    #[command(
        after_help = "Example:\n  treaty-bench audit --work /tmp/treaty-audit-bench --entries 1000000"
    )]
    Audit {
        #[arg(long)]
        work: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        #[arg(long, value_enum, default_value_t)]
        format: crate::Format,
    },
    /// The release benchmark: sealing work vs SHA-256 alone, bundling vs `tar -czf`, and
    /// signature medians, on a generated input (kept in WORK for reuse).
    #[command(
        after_help = "Example:\n  treaty-bench release --work /tmp/treaty-release-bench --size-mib 1024 --files 16"
    )]
    Release {
        #[arg(long)]
        work: PathBuf,
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        #[arg(long, default_value_t = 16)]
        files: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, value_enum, default_value_t)]
        format: crate::Format,
    },
    /// The law benchmark: decisions on pre-signed orders across the demo federation's seven
    /// treaties, in process against its floors, and over HTTP with `wrk` (when installed).
    #[command(
        after_help = "Example:\n  cargo build --release --workspace && target/release/treaty-bench law --work /tmp/treaty-law-bench --orders 4000"
    )]
    Law {
        #[arg(long)]
        work: PathBuf,
        #[arg(long, default_value_t = 4000)]
        orders: usize,
        /// Seconds of wrk load per concurrency level.
        #[arg(long, default_value_t = 5)]
        wrk_seconds: u64,
        #[arg(long, value_enum, default_value_t)]
        format: crate::Format,
    },
    /// The war game: N agents on one Redis, simulated providers for the seven networks and a
    /// day of orders on a simulated clock, through a provider outage, a demand surge, an agent
    /// killed and restarted, Redis restarted and a treaty revoked by an approved commit; a
    /// report per phase (docs/law.md § The war game). Needs redis-server and git on PATH.
    #[command(
        after_help = "Example (one command, a fresh machine with .ci/setup's packages; about five minutes of day after the build):
  cargo run --release -p treaty-bench --features sim-clock -- fleet --work /tmp/treaty-war-game

The agents are treaty-agent-sim (the agent built with the simulated clock, beside this binary);
the product's treaty-agent never has that clock."
    )]
    Fleet {
        #[arg(long)]
        work: PathBuf,
        /// Agents behind the load balancer (1..=8).
        #[arg(long, default_value_t = 4)]
        agents: usize,
        /// Simulated seconds per real second (288: the day in five minutes).
        #[arg(long, default_value_t = 288)]
        rate: u32,
        /// Orders over the day (100..=500000), before failovers, replays and resubmissions.
        #[arg(long, default_value_t = 30_000)]
        orders: usize,
        /// A provider's mean time to answer, in real milliseconds.
        #[arg(long, default_value_t = 20)]
        ack_latency_ms: u64,
        /// The share of orders a healthy provider rejects (0..=1).
        #[arg(long, default_value_t = 0.01)]
        ack_failure: f64,
        #[arg(long, default_value_t = 0x5eed)]
        seed: u64,
        #[arg(long, value_enum, default_value_t)]
        format: crate::Format,
    },
    /// Verify HEAD of a generated repository and compare with the signature-verification floor.
    Verify {
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: crate::Format,
    },
}

pub fn run(c: Command) -> anyhow::Result<Exit> {
    match c {
        #[cfg(not(feature = "sim-clock"))]
        Command::Fleet { .. } => anyhow::bail!(
            "the war game runs on a simulated clock, which this build lacks: cargo run --release -p treaty-bench --features sim-clock -- fleet --work DIR"
        ),
        #[cfg(feature = "sim-clock")]
        Command::Fleet {
            work,
            agents,
            rate,
            orders,
            ack_latency_ms,
            ack_failure,
            seed,
            format,
        } => {
            if !(0.0..=1.0).contains(&ack_failure) {
                anyhow::bail!("--ack-failure {ack_failure}: a share, 0..=1");
            }
            let quiet = format == crate::Format::Json;
            let r = treaty_bench::fleet::run(
                &treaty_bench::fleet::Options {
                    work,
                    agents: agents.clamp(1, treaty_bench::fleet::MAX_AGENTS),
                    rate,
                    orders: orders.clamp(100, treaty_bench::fleet::MAX_ORDERS),
                    ack_latency_ms,
                    ack_failure,
                    seed,
                },
                &|m: &str| {
                    if !quiet {
                        tell!("war game: {m}");
                    }
                },
            )
            .map_err(anyhow::Error::msg)?;
            match format {
                crate::Format::Json => crate::cli::output::json(&r)?,
                crate::Format::Human => crate::fleet_report::print(&r),
            }
            Ok(if r.nonces_allowed_twice == 0
                && r.allowed_after_revocation_applied == 0
                && r.revocation_applied
            {
                Exit::Ok
            } else {
                Exit::Findings
            })
        }
        Command::Law {
            work,
            orders,
            wrk_seconds,
            format,
        } => {
            let r = treaty_bench::law::run(
                &work,
                orders.clamp(10, 1_000_000),
                wrk_seconds.clamp(1, 600),
            )
            .map_err(anyhow::Error::msg)?;
            match format {
                crate::Format::Json => crate::cli::output::json(&r)?,
                crate::Format::Human => {
                    say!(
                        "{} pre-signed orders; decided {} allowed, {} denied, {} refused (replays)",
                        r.orders,
                        r.allowed,
                        r.denied,
                        r.refused
                    );
                    say!("in process, durable store, one thread: {}", r.engine);
                    say!(
                        "floor, verify order (+ each distinct attestation once) + one fdatasync'd append: {}",
                        r.floor_verify_commit
                    );
                    say!(
                        "floor, the same signature verifications alone: {}",
                        r.floor_verify
                    );
                    say!("the same constraints in Rego (regorus):  {}", r.rego_alone);
                    say!("engine p50 / floor p50: {:.2}x", r.ratio_to_floor);
                    for l in &r.http {
                        say!(
                            "HTTP, {} connection(s): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                            l.connections, l.requests_per_second, l.p50_ms, l.p99_ms, l.max_ms
                        );
                    }
                    if let Some(h) = &r.http_half {
                        say!(
                            "HTTP at half saturation ({:.0}/s; {} connections, {} ms think time; {} runs): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms (min {:.2}, max {:.2}), max {:.2} ms; floor p99 in process {:.2} ms",
                            h.target_per_second,
                            h.connections,
                            h.think_ms,
                            h.runs.len(),
                            h.achieved_per_second_median,
                            h.p50_ms_median,
                            h.p99_ms_median,
                            h.p99_ms_min,
                            h.p99_ms_max,
                            h.max_ms,
                            r.floor_verify_commit.p99_us / 1e3
                        );
                    }
                    say!("{}", r.http_note);
                    if let Some(m) = &r.http_server_mix {
                        say!("over HTTP, counted by the server: {m}");
                    }
                }
            }
            Ok(Exit::Ok)
        }
        Command::Agent {
            dir,
            work,
            fleet,
            format,
        } => {
            let r = treaty_bench::agent::run(&dir, &work, fleet).map_err(anyhow::Error::msg)?;
            match format {
                crate::Format::Json => crate::cli::output::json(&r)?,
                crate::Format::Human => {
                    say!(
                        "{} governed files; initial apply {:.2} s ({} commands)",
                        r.files,
                        r.initial_apply_s,
                        r.initial_commands
                    );
                    say!(
                        "one treaty changed upstream: verify + snapshot + heartbeat + emit after the fetch (median of 5) {:.1} ms ({} command) vs full verify {:.1} ms -> {:.3}x",
                        r.incremental_judge_ms, r.incremental_commands, r.full_verify_ms, r.ratio
                    );
                    say!(
                        "poll when nothing changed (fetch + one ref comparison): {:.1} ms",
                        r.unchanged_poll_ms
                    );
                    if let (Some(a), Some(c)) = (r.fleet_all_applied_s, r.fleet_daemon_cpu_s) {
                        say!("fleet of {} agents over git://: all applied the new commit in {a:.2} s; git daemon CPU {c:.2} s", r.fleet_agents);
                    }
                }
            }
            Ok(Exit::Ok)
        }
        Command::Audit {
            work,
            entries,
            format,
        } => {
            let r = treaty_bench::audit::run(&work, entries).map_err(anyhow::Error::msg)?;
            match format {
                crate::Format::Json => crate::cli::output::json(&r)?,
                crate::Format::Human => {
                    say!(
                        "{} entries, {:.0} bytes each on average",
                        r.entries,
                        r.entry_bytes_avg
                    );
                    say!(
                        "append in memory (RFC 8785 + leaf hash + tree): {:.2} us/entry median; tree only {:.3} us; peak RSS {:.1} MiB",
                        r.append_us, r.append_tree_only_us, r.append_peak_rss_mib.unwrap_or(f64::NAN)
                    );
                    for p in &r.persist {
                        say!(
                            "persist to git, batches of {}: {} batches to {} entries, median {:.1} ms per batch ({:.2} us/entry), last {:.1} ms",
                            p.batch, p.batches, p.entries, p.median_batch_ms, p.per_entry_us, p.last_batch_ms
                        );
                    }
                    say!(
                        "proofs at {}: inclusion gen {:.2} us, verify {:.2} us; consistency gen {:.2} us, verify {:.2} us",
                        r.entries, r.inclusion_gen_us, r.inclusion_verify_us, r.consistency_gen_us, r.consistency_verify_us
                    );
                    say!(
                        "audit verify of {} entries: {:.2} s vs SHA-256 over the same bytes on the same {}-thread pool {:.3} s (median of 5) -> {:.1}x; peak RSS {:.1} MiB",
                        r.entries, r.verify_s, r.threads, r.sha256_same_bytes_s, r.verify_ratio, r.verify_peak_rss_mib.unwrap_or(f64::NAN)
                    );
                    say!(
                        "  of which git reads, bundle decoding, hashing and tile comparison (no entry checks): {:.2} s",
                        r.scan_without_entry_checks_s
                    );
                    say!(
                        "  and the same with libgit2's per-object SHA-1 check off: {:.2} s",
                        r.scan_without_object_hash_checks_s
                    );
                    say!(
                        "checkpoint signature (Ed25519 note): sign {:.1} us, verify {:.1} us",
                        r.checkpoint_sign_us,
                        r.checkpoint_verify_us
                    );
                }
            }
            Ok(Exit::Ok)
        }
        Command::Release {
            work,
            size_mib,
            files,
            runs,
            format,
        } => {
            let r = treaty_bench::release::run(&work, size_mib * 1024 * 1024, files, runs)
                .map_err(anyhow::Error::msg)?;
            match format {
                crate::Format::Json => crate::cli::output::json(&r)?,
                crate::Format::Human => {
                    let gib = r.bytes as f64 / (1u64 << 30) as f64;
                    say!(
                        "input: {gib:.2} GiB in {} files; median of {} runs",
                        r.files,
                        r.runs
                    );
                    say!(
                        "sealing work (SHA-256 + BLAKE3 + Merkle root): wall {:.3} s vs floor SHA-256 alone {:.3} s ({:.2} GB/s) -> {:.2}x (unfair: sealing hashes on two threads, the floor on one); peak RSS {:.1} MiB",
                        r.seal_work_s, r.floor_sha256_s, r.floor_gb_per_s, r.seal_ratio,
                        r.seal_peak_rss_mib.unwrap_or(f64::NAN)
                    );
                    let cpu = |v: Option<f64>| v.map_or("n/a".to_owned(), |c| format!("{c:.2} s"));
                    say!(
                        "  CPU time (user + system, all threads; 10 ms resolution): sealing {} vs floor {} -> {} (like for like)",
                        cpu(r.seal_cpu_s),
                        cpu(r.floor_cpu_s),
                        r.seal_cpu_ratio.map_or("n/a".to_owned(), |x| format!("{x:.2}x"))
                    );
                    say!(
                        "bundling (deterministic tar.gz): {:.2} s vs tar -czf {:.2} s -> {:.2}x; {} vs {} bytes; peak RSS {:.1} MiB",
                        r.bundle_s, r.tar_czf_s, r.bundle_ratio, r.archive_bytes, r.tar_czf_bytes,
                        r.bundle_peak_rss_mib.unwrap_or(f64::NAN)
                    );
                    say!(
                        "signatures (median of 201): Ed25519 sign {:.1} us, verify {:.1} us; ML-DSA-65 sign {:.1} us, verify {:.1} us",
                        r.ed25519_sign_us, r.ed25519_verify_us, r.mldsa65_sign_us, r.mldsa65_verify_us
                    );
                }
            }
            Ok(Exit::Ok)
        }
        Command::Gen { n, out } => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let bar = indicatif::ProgressBar::new(n as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} treaties ({eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message("signing");
            treaty_bench::generate(&out, n, |d| bar.set_position(d as u64))?;
            bar.finish_and_clear();
            say!(
                "wrote and committed {n} signed treaties in {}",
                out.display()
            );
            Ok(Exit::Ok)
        }
        Command::Gate { dir, runs } => {
            let r = treaty_bench::gate(&dir, runs)?;
            say!("files in the governed tree: {}", r.files);
            say!("each a process, after 2 warm-ups, on a copy of the repository:");
            say!("pull-request lane (one treaty changed)");
            say!("  treaty gate --target main:           {}", r.gate);
            say!("  floor: git diff -U0 | grep -i temp.stub: {}", r.diff_grep);
            say!("  ratio gate/floor: {:.2}x (the gate also judges approvals, versions and no-ops; the floor only greps added lines)", r.ratio);
            say!("promotion lane (every file scanned)");
            say!("  treaty gate --target production:     {}", r.promotion);
            say!("  floor: git grep -i temp.stub HEAD:   {}", r.git_grep);
            say!("  ratio gate/floor: {:.2}x", r.promotion_ratio);
            say!("gate passed:             {}", r.passed);
            Ok(if r.passed { Exit::Ok } else { Exit::Findings })
        }
        Command::Noop {
            corpus,
            mirrors,
            history,
            synthetic,
            seed,
        } => {
            let mut exit = Exit::Ok;
            if let (Some(corpus), Some(mirrors)) = (corpus, mirrors) {
                use treaty_bench::noop_corpus::{grade, Corpus, Grade};
                let c = Corpus::read(&corpus)?;
                let r = grade(
                    &c,
                    &mirrors,
                    treaty_bench::noop_legacy::equivalent,
                    treaty::gate::noop::equivalent,
                )?;
                say!(
                    "corpus {}: {} repositories ({}), {} commits judged, {} labels",
                    corpus.display(),
                    r.repos.len(),
                    r.repos.join(", "),
                    r.guard.judged,
                    r.labels
                );
                let line = |name: &str, g: &Grade| {
                    say!(
                        "{name:<9} flagged {:>4}: {:>4} labelled no-op, {:>4} labelled real, {:>4} unlabelled; missed no-ops {:>4}; false-positive rate {:.3}% of commits",
                        g.flagged,
                        g.true_positives,
                        g.false_positives.len(),
                        g.unlabelled.len(),
                        g.missed,
                        100.0 * g.false_positive_rate()
                    );
                };
                line("baseline", &r.baseline);
                line("guard", &r.guard);
                for f in &r.guard.false_positives {
                    say!("  guard false positive: {f}");
                }
                for f in &r.baseline.unlabelled {
                    say!("  baseline flag without a label: {f}");
                }
                for f in &r.guard.unlabelled {
                    say!("  guard flag without a label (counted as false positive): {f}");
                }
                if !r.guard.false_positives.is_empty() || !r.guard.unlabelled.is_empty() {
                    exit = Exit::Findings;
                }
            }
            if let Some(h) = history {
                let r = treaty_bench::noop_history(&h)?;
                say!(
                    "history {}: {} commits, {} flagged as no-op (unlabelled: review them, or grade with --corpus)",
                    h.display(),
                    r.real_changes,
                    r.real_flagged_noop.len(),
                );
                for c in &r.real_flagged_noop {
                    say!("  flagged: {c}");
                }
            }
            if synthetic > 0 {
                let tmp = tempfile_dir()?;
                let r = treaty_bench::noop_synthetic(&tmp, synthetic, seed)?;
                say!(
                    // A smoke test, not a measurement: its 16 templates were written together with
                    // the classifier, so its figure is no false-positive rate (the labelled
                    // corpus, `--corpus`, is).
                    "synthetic smoke test ({synthetic} commits from 16 templates, seed {seed:#x}): {} real, {} flagged; {} no-op, {} missed — not a false-positive rate (see --corpus)",
                    r.real_changes,
                    r.real_flagged_noop.len(),
                    r.noop_changes,
                    r.noop_missed.len(),
                );
                for c in r.real_flagged_noop.iter().chain(&r.noop_missed) {
                    say!("  misjudged: {c}");
                }
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Ok(exit)
        }
        Command::Verify { dir, format } => {
            let r = treaty_bench::verify(&dir)?;
            if r.floor_failed > 0 {
                anyhow::bail!(
                    "the floor verified {} of {} signatures: {} is not the honest repository `treaty-bench gen` writes, so no figure is printed",
                    r.signatures_checked - r.floor_failed,
                    r.signatures_checked,
                    dir.display()
                );
            }
            match format {
                crate::Format::Json => crate::cli::output::json(&r)?,
                crate::Format::Human => {
                    say!("files judged:            {}", r.files);
                    say!("approved:                {}", r.approved);
                    say!("threads:                 {}", r.threads);
                    say!("first verify (cold):     {:.3} s", r.first_verify_s);
                    say!("full verify (warm):      {}", r.full_verify);
                    say!(
                        "floor ({} signature verifications, all valid, same pool): {}",
                        r.signatures_checked,
                        r.floor
                    );
                    say!("ratio full/floor:        {:.2}x (medians)", r.ratio);
                    say!(
                        "repeat verify (cache):   {} = {:.1}% of the full run",
                        r.repeat_verify,
                        100.0 * r.repeat_ratio
                    );
                    match r.peak_rss_mb {
                        Some(m) => say!("peak RSS:                {m:.1} MiB"),
                        None => say!("peak RSS:                unavailable"),
                    }
                }
            }
            Ok(if r.approved { Exit::Ok } else { Exit::Findings })
        }
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let p = std::env::temp_dir().join(format!("treaty-noop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
    Ok(p)
}
