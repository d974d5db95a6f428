//! The release benchmark (`treaty-bench release`): on a generated input of a given size, in
//! one run, (a) the sealing work — every file's SHA-256 and BLAKE3 and the Merkle root —
//! against the floor of SHA-256 alone over the same bytes with the `sha2` crate; (b) bundling
//! (the deterministic `tar.gz`) against `tar -czf` of the same tree; (c) Ed25519 and ML-DSA-65
//! sign and verify medians. It measures and prints ratios; it never asserts a speed.

use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::{median, peak_rss_mb};
use treaty::release::{self, Input};

/// What `treaty-bench release` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseBench {
    pub bytes: u64,
    pub files: usize,
    pub runs: usize,
    pub floor_sha256_s: f64,
    pub floor_gb_per_s: f64,
    pub seal_work_s: f64,
    pub seal_ratio: f64,
    /// CPU time (user + system, every thread) of the median-wall-time runs: sealing hashes
    /// SHA-256 and BLAKE3 on two threads, the floor on one, so wall time alone flatters it.
    pub floor_cpu_s: Option<f64>,
    pub seal_cpu_s: Option<f64>,
    /// `seal_cpu_s / floor_cpu_s`: the like-for-like figure (the same work per byte).
    pub seal_cpu_ratio: Option<f64>,
    /// Peak RSS while sealing (the counter is reset before the pass).
    pub seal_peak_rss_mib: Option<f64>,
    pub bundle_s: f64,
    pub tar_czf_s: f64,
    pub bundle_ratio: f64,
    pub bundle_peak_rss_mib: Option<f64>,
    pub archive_bytes: u64,
    pub tar_czf_bytes: u64,
    pub ed25519_sign_us: f64,
    pub ed25519_verify_us: f64,
    pub mldsa65_sign_us: f64,
    pub mldsa65_verify_us: f64,
}

/// Linux: resets this process's peak-RSS counter (`VmHWM`) so a phase can be measured alone.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Writes `files` files totalling `bytes` under `dir`: text-like content from a fixed-seed
/// generator, compressible about as well as typical release artefacts (neither zeros nor
/// noise), so the compressor does real work.
pub fn generate(dir: &Path, bytes: u64, files: usize) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let per = bytes / files.max(1) as u64;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let words: [&[u8]; 16] = [
        b"treaty ",
        b"compute ",
        b"approve ",
        b"\n",
        b"signed ",
        b"0x",
        b"group ",
        b"{\"v\":",
        b"}, ",
        b"release ",
        b"quorum ",
        b"ledger ",
        b"merkle ",
        b"root ",
        b"\t",
        b"policy ",
    ];
    let mut out = Vec::with_capacity(files);
    let mut buf = Vec::with_capacity(1 << 20);
    for i in 0..files {
        let p = dir.join(format!("part-{i:04}.bin"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p)?);
        let mut left = per;
        while left > 0 {
            buf.clear();
            while buf.len() < (1 << 20) {
                // xorshift64*
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
                if r & 3 == 0 {
                    buf.extend_from_slice(&r.to_le_bytes()[..6]);
                } else {
                    buf.extend_from_slice(words[(r >> 8) as usize & 15]);
                }
            }
            let n = buf.len().min(left as usize);
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        f.flush()?;
        out.push(p);
    }
    Ok(out)
}

fn floor_sha256(files: &[PathBuf]) -> std::io::Result<()> {
    use sha2::Digest as _;
    let mut buf = vec![0u8; 1 << 20];
    for p in files {
        let mut f = std::fs::File::open(p)?;
        let mut h = sha2::Sha256::new();
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        std::hint::black_box(h.finalize());
    }
    Ok(())
}

/// The sealing work exactly as `release bundle` records it: per-file SHA-256 and BLAKE3 in
/// one read, then the RFC 9162 root over the leaves.
fn seal_work(files: &[PathBuf]) -> Result<String, release::ReleaseError> {
    let mut tree = treaty::merkle::Tree::new();
    for p in files {
        let (_, sha, b3) = release::digest_file(p)?;
        std::hint::black_box(b3);
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        tree.push(treaty::merkle::leaf_hash(&release::leaf_data(name, &sha)));
    }
    Ok(hex::encode(tree.root()))
}

/// This process's CPU time so far (user + system, all threads, exited ones included), from
/// `/proc/self/stat` in USER_HZ ticks (100 per second on Linux: 10 ms resolution). `None`
/// off Linux.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Wall and CPU time of `f`.
fn time_cpu<T>(f: impl FnOnce() -> T) -> (f64, Option<f64>, T) {
    let c0 = cpu_seconds();
    let (t, v) = time(f);
    let cpu = c0.zip(cpu_seconds()).map(|(a, b)| b - a);
    (t, cpu, v)
}

/// The CPU time of the run whose wall time is the median.
fn cpu_at_median(runs: &[(f64, Option<f64>)]) -> Option<f64> {
    let mut v = runs.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v.get(v.len() / 2).and_then(|r| r.1)
}

fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let v = f();
    (t.elapsed().as_secs_f64(), v)
}

fn sig_medians(n: usize) -> Result<(f64, f64, f64, f64), String> {
    let key = treaty::crypto::SigningKey::generate("bench").map_err(|e| e.to_string())?;
    let msg = vec![7u8; 512];
    let (mut es, mut ev, mut ms, mut mv) = (vec![], vec![], vec![], vec![]);
    let ed = key.classical_public();
    let ml = key.mldsa_public().ok_or("no ML-DSA key")?;
    for _ in 0..n {
        let (t, s) = time(|| key.sign_classical(&msg));
        let s = s.map_err(|e| e.to_string())?;
        es.push(t * 1e6);
        let (t, ok) = time(|| ed.verify(&msg, &s));
        ev.push(t * 1e6);
        if !ok {
            return Err("Ed25519 self-check failed".into());
        }
        // `sign` makes both; the ML-DSA part is the difference from Ed25519 alone.
        let (t, both) = time(|| key.sign(&msg));
        let both = both.map_err(|e| e.to_string())?;
        ms.push((t * 1e6 - es.last().copied().unwrap_or(0.0)).max(0.0));
        let sig = both
            .iter()
            .find(|s| s.key == ml)
            .map(|s| s.sig.clone())
            .ok_or("no ML-DSA signature")?;
        let (t, ok) = time(|| ml.verify(&msg, &sig));
        mv.push(t * 1e6);
        if !ok {
            return Err("ML-DSA self-check failed".into());
        }
    }
    Ok((median(es), median(ev), median(ms), median(mv)))
}

/// Runs the benchmark in `work` (created; the input is generated once and reused if present).
pub fn run(work: &Path, bytes: u64, files: usize, runs: usize) -> Result<ReleaseBench, String> {
    let input = work.join("input");
    let marker = work.join(format!("input-{bytes}-{files}.done"));
    let paths = if marker.exists() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&input)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        v.sort();
        v
    } else {
        let _ = std::fs::remove_dir_all(&input);
        let v = generate(&input, bytes, files).map_err(|e| e.to_string())?;
        std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
        v
    };
    let total: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    // Warm the page cache so both sides read from memory.
    floor_sha256(&paths).map_err(|e| e.to_string())?;
    let runs = runs.max(5);
    let (mut floor, mut seal) = (vec![], vec![]);
    let (mut floor_cpu, mut seal_cpu) = (vec![], vec![]);
    let mut seal_rss: Option<f64> = None;
    for _ in 0..runs {
        let (t, c, r) = time_cpu(|| floor_sha256(&paths));
        r.map_err(|e| e.to_string())?;
        floor.push(t);
        floor_cpu.push((t, c));
        reset_peak_rss();
        let (t, c, r) = time_cpu(|| seal_work(&paths));
        r.map_err(|e| e.to_string())?;
        seal.push(t);
        seal_cpu.push((t, c));
        seal_rss = match (seal_rss, peak_rss_mb()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    let (mut ours, mut theirs) = (vec![], vec![]);
    let mut bundle_rss: Option<f64> = None;
    let (mut abytes, mut tbytes) = (0, 0);
    let out = work.join("out");
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(&out);
        let inputs: Vec<(String, Input)> = paths
            .iter()
            .map(|p| {
                (
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("x")
                        .to_owned(),
                    Input::File(p.clone()),
                )
            })
            .collect();
        reset_peak_rss();
        let (t, r) =
            time(|| release::bundle(&out, "bench", inputs, serde_json::json!("artifacts"), None));
        let m = r.map_err(|e| e.to_string())?;
        abytes = m.archive.size;
        ours.push(t);
        bundle_rss = match (bundle_rss, peak_rss_mb()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let tgz = work.join("tar-czf.tar.gz");
        let (t, st) = time(|| {
            std::process::Command::new("tar")
                .arg("-czf")
                .arg(&tgz)
                .arg("-C")
                .arg(&input)
                .arg(".")
                .status()
        });
        match st {
            Ok(s) if s.success() => {}
            other => return Err(format!("tar -czf failed: {other:?}")),
        }
        tbytes = std::fs::metadata(&tgz).map_or(0, |m| m.len());
        theirs.push(t);
    }
    let (es, ev, ms, mv) = sig_medians(201)?;
    let (f, s, o, t) = (median(floor), median(seal), median(ours), median(theirs));
    let (fc, sc) = (cpu_at_median(&floor_cpu), cpu_at_median(&seal_cpu));
    Ok(ReleaseBench {
        bytes: total,
        files: paths.len(),
        runs,
        floor_sha256_s: f,
        floor_gb_per_s: total as f64 / f / 1e9,
        seal_work_s: s,
        seal_ratio: s / f,
        floor_cpu_s: fc,
        seal_cpu_s: sc,
        seal_cpu_ratio: fc.zip(sc).filter(|(f, _)| *f > 0.0).map(|(f, s)| s / f),
        seal_peak_rss_mib: seal_rss,
        bundle_s: o,
        tar_czf_s: t,
        bundle_ratio: o / t,
        bundle_peak_rss_mib: bundle_rss,
        archive_bytes: abytes,
        tar_czf_bytes: tbytes,
        ed25519_sign_us: es,
        ed25519_verify_us: ev,
        mldsa65_sign_us: ms,
        mldsa65_verify_us: mv,
    })
}
