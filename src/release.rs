//! Release bundles: a deterministic `NAME.tar.gz`, its manifest and `SHA256SUMS`.
//!
//! Owns the first step of the release ceremony (`treaty release bundle`): the same input and
//! the same tool version give the same bytes, so anyone can rebuild a bundle and compare. Tar
//! entries are sorted by path, ustar headers carry mode 0644, uid/gid 0, empty owner names and
//! mtime 0; the gzip header has mtime 0 and OS byte 255 (unknown); the compressor is flate2's
//! default backend (miniz_oxide, pinned by Cargo.lock) at level 6. The manifest lists every
//! file's path, size, SHA-256 and BLAKE3, the archive's digests, and an RFC 9162 Merkle root
//! over the files (leaf encoding in [`leaf_data`]). Inputs are streamed: hashed once, never held
//! whole in memory. Signing, sealing and timestamps live in [`ceremony`]; OpenPGP in [`pgp`].

pub mod ceremony;
pub mod pgp;
pub mod sigstore;

use flate2::{Compression, GzBuilder};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

use crate::crypto::sha256_hex;
use crate::merkle;

/// Errors while bundling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReleaseError + '_ {
    move |source| ReleaseError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One file of a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub blake3: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Digests {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub blake3: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MerkleInfo {
    pub algorithm: &'static str,
    pub leaf_encoding: &'static str,
    pub tree_size: u64,
    pub root: String,
}

/// `NAME.manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub spec_version: &'static str,
    pub kind: &'static str,
    pub name: String,
    pub tool: String,
    /// What was bundled: `{"revision": …, "commit": …}` for an approved state, or `"artifacts"`.
    pub source: serde_json::Value,
    pub files: Vec<FileEntry>,
    pub archive: Digests,
    pub merkle: MerkleInfo,
}

/// The Merkle leaf for one file: `path ‖ 0x00 ‖ hex(SHA-256(content))`, as bytes (RFC 9162
/// leaf hash `SHA-256(0x00 ‖ leaf_data)` applies on top). Paths are unique and contain no NUL,
/// so the encoding is unambiguous.
pub fn leaf_data(path: &str, sha256_hex: &str) -> Vec<u8> {
    let mut v = path.as_bytes().to_vec();
    v.push(0);
    v.extend_from_slice(sha256_hex.as_bytes());
    v
}

/// Where a bundled file's bytes come from: memory (a governed file read from git) or a file
/// on disk, streamed so a large artifact is never held in memory.
#[derive(Debug, Clone)]
pub enum Input {
    Bytes(Vec<u8>),
    File(std::path::PathBuf),
}

impl From<Vec<u8>> for Input {
    fn from(b: Vec<u8>) -> Self {
        Input::Bytes(b)
    }
}

/// SHA-256 and BLAKE3 over one stream, fed once. BLAKE3 runs on a second thread for large
/// buffers (`rayon::join`), so the pair costs about as much as SHA-256 alone.
#[derive(Clone, Default)]
pub struct Digester {
    sha: sha2::Sha256,
    b3: blake3::Hasher,
    len: u64,
}

impl Digester {
    pub fn update(&mut self, buf: &[u8]) {
        use sha2::Digest as _;
        if buf.len() >= 64 * 1024 {
            let (sha, b3) = (&mut self.sha, &mut self.b3);
            rayon::join(|| sha.update(buf), || b3.update(buf));
        } else {
            self.sha.update(buf);
            self.b3.update(buf);
        }
        self.len += buf.len() as u64;
    }

    /// (size, sha256 hex, blake3 hex)
    pub fn finish(self) -> (u64, String, String) {
        use sha2::Digest as _;
        (
            self.len,
            hex::encode(self.sha.finalize()),
            self.b3.finalize().to_hex().to_string(),
        )
    }
}

/// A reader that digests what passes through it.
struct DigestReader<R> {
    inner: R,
    d: Digester,
}

impl<R: std::io::Read> std::io::Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.d.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that digests what passes through it.
struct DigestWriter<W> {
    inner: W,
    d: Digester,
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.d.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The read buffer for streamed files (1 MiB: large enough to amortise the BLAKE3 hand-off).
const CHUNK: usize = 1024 * 1024;

/// Digests one file on disk in a single pass: (size, sha256, blake3).
pub fn digest_file(path: &Path) -> Result<(u64, String, String), ReleaseError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut d = Digester::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
    }
    Ok(d.finish())
}

/// Writes the bundle for `files` (paths are sorted here) into `dir`, streaming every input
/// once through the tar writer, the per-file digests and the archive digests. Returns the
/// manifest. `progress`, when given, advances by input bytes.
pub fn bundle(
    dir: &Path,
    name: &str,
    mut files: Vec<(String, Input)>,
    source: serde_json::Value,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Manifest, ReleaseError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(ReleaseError::Refused(format!(
            "{name:?} is not a usable bundle name"
        )));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    if files.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(ReleaseError::Refused("the same path twice".into()));
    }
    for (p, _) in &files {
        crate::path::RepoPath::new(p).map_err(|e| ReleaseError::Refused(format!("{p}: {e}")))?;
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tar_name = format!("{name}.tar.gz");
    let tar_path = dir.join(&tar_name);
    let tmp = tar_path.with_extension("tmp-treaty");
    let out = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    // Removed on every early return below (a full disk half way through the archive).
    let guard = crate::durable::RemoveOnDrop::new(tmp.clone());
    let sink = DigestWriter {
        inner: std::io::BufWriter::with_capacity(CHUNK, out),
        d: Digester::default(),
    };
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(sink, Compression::new(LEVEL));
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut tree = merkle::Tree::new();
    let mut entries = Vec::with_capacity(files.len());
    for (p, input) in files {
        let (size, reader): (u64, Box<dyn std::io::Read>) = match input {
            Input::Bytes(b) => (b.len() as u64, Box::new(std::io::Cursor::new(b))),
            Input::File(fp) => {
                let f = std::fs::File::open(&fp).map_err(io(&fp))?;
                let len = f.metadata().map_err(io(&fp))?.len();
                (len, Box::new(f))
            }
        };
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        let counted: Box<dyn std::io::Read> = match progress {
            Some(pb) => Box::new(pb.wrap_read(reader)),
            None => reader,
        };
        let mut r = DigestReader {
            inner: std::io::Read::take(counted, size),
            d: Digester::default(),
        };
        tar.append_data(&mut h, &p, &mut r).map_err(io(dir))?;
        let (n, sha, b3) = r.d.finish();
        if n != size {
            return Err(ReleaseError::Refused(format!(
                "{p}: changed while being bundled ({n} bytes read, {size} expected)"
            )));
        }
        tree.push(merkle::leaf_hash(&leaf_data(&p, &sha)));
        entries.push(FileEntry {
            path: p,
            size,
            sha256: sha,
            blake3: b3,
        });
    }
    let gz = tar.into_inner().map_err(io(dir))?;
    let mut sink = gz.finish().map_err(io(dir))?;
    sink.flush().map_err(io(&tmp))?;
    let (asize, asha, ab3) = sink.d.finish();
    let file = sink
        .inner
        .into_inner()
        .map_err(|e| io(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &tar_path).map_err(io(&tar_path))?;
    guard.keep();
    let manifest = Manifest {
        spec_version: crate::SPEC_VERSION,
        kind: "treaty-release-manifest",
        name: name.to_owned(),
        tool: format!("treaty {}", env!("CARGO_PKG_VERSION")),
        source,
        files: entries,
        archive: Digests {
            name: tar_name.clone(),
            size: asize,
            sha256: asha.clone(),
            blake3: ab3,
        },
        merkle: MerkleInfo {
            algorithm: "RFC 9162 SHA-256",
            leaf_encoding: "path || 0x00 || hex(sha256(file)), in path order",
            tree_size: tree.len() as u64,
            root: hex::encode(tree.root()),
        },
    };
    let mut mbytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| ReleaseError::Refused(e.to_string()))?;
    mbytes.push(b'\n');
    let manifest_name = format!("{name}.manifest.json");
    write(&dir.join(&manifest_name), &mbytes)?;
    let mut sums = [(tar_name, asha), (manifest_name, sha256_hex(&mbytes))];
    sums.sort();
    let text: String = sums.iter().map(|(n, h)| format!("{h}  {n}\n")).collect();
    write(&dir.join("SHA256SUMS"), text.as_bytes())?;
    Ok(manifest)
}

/// The pinned deflate level: GNU gzip's default, so bundling costs what `tar -czf` does.
pub const LEVEL: u32 = 6;

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReleaseError> {
    crate::durable::write(path, bytes, None).map_err(|e| io(path)(e.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_byte_identical_for_the_same_input_in_any_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let files = vec![
            ("z/b.json".to_owned(), Input::from(b"2".to_vec())),
            ("a.json".to_owned(), Input::from(b"1".to_vec())),
        ];
        let mut rev = files.clone();
        rev.reverse();
        bundle(a.path(), "r", files, serde_json::json!("artifacts"), None).unwrap();
        bundle(b.path(), "r", rev, serde_json::json!("artifacts"), None).unwrap();
        for f in ["r.tar.gz", "r.manifest.json", "SHA256SUMS"] {
            assert_eq!(
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
                "{f}"
            );
        }
    }

    #[test]
    fn the_manifest_merkle_root_is_recomputable_from_the_listed_files() {
        let d = tempfile::tempdir().unwrap();
        let m = bundle(
            d.path(),
            "r",
            vec![
                ("x".into(), b"a".to_vec().into()),
                ("y".into(), b"b".to_vec().into()),
                ("w".into(), vec![].into()),
            ],
            serde_json::json!("artifacts"),
            None,
        )
        .unwrap();
        let leaves: Vec<merkle::Hash> = m
            .files
            .iter()
            .map(|f| merkle::leaf_hash(&leaf_data(&f.path, &f.sha256)))
            .collect();
        assert_eq!(hex::encode(merkle::root_of(&leaves)), m.merkle.root);
        assert_eq!(
            m.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["w", "x", "y"]
        );
    }

    #[test]
    fn bad_names_and_paths_are_refused() {
        let d = tempfile::tempdir().unwrap();
        assert!(bundle(d.path(), "../x", vec![], serde_json::json!(null), None).is_err());
        assert!(bundle(
            d.path(),
            "r",
            vec![("../etc/passwd".into(), vec![].into())],
            serde_json::json!(null),
            None
        )
        .is_err());
        assert!(bundle(
            d.path(),
            "r",
            vec![("a".into(), vec![].into()), ("a".into(), vec![1].into())],
            serde_json::json!(null),
            None
        )
        .is_err());
    }
}

/// One layer's verdict in `treaty release verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    pub layer: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Layer {
    fn new<E: std::fmt::Display>(layer: &'static str, r: Result<String, E>) -> Self {
        match r {
            Ok(detail) => Self {
                layer,
                ok: true,
                detail,
            },
            Err(e) => Self {
                layer,
                ok: false,
                detail: e.to_string(),
            },
        }
    }
}

/// How `verify_all` judges the layers beyond integrity and history.
#[derive(Debug, Default)]
pub struct VerifyOptions<'a> {
    /// The release group and TSA roots from a verified root; without it (or with the reason
    /// in `trust_problem`) authenticity and time cannot pass.
    pub trust: Option<&'a ceremony::ReleaseTrust>,
    pub trust_problem: Option<String>,
    /// Valid timestamps required for the time layer (at least 1).
    pub min_timestamps: usize,
    /// An inclusion proof (`treaty release prove` output) to check in the history layer.
    pub proof: Option<Vec<u8>>,
}

/// The integrity and history layers of `dir/name` only (what an officer checks before
/// signing).
pub fn verify(dir: &Path, name: &str) -> Result<Vec<Layer>, ReleaseError> {
    let mpath = dir.join(format!("{name}.manifest.json"));
    let mbytes = std::fs::read(&mpath).map_err(io(&mpath))?;
    let apath = dir.join(format!("{name}.tar.gz"));
    let integrity = check_integrity(&mpath, &mbytes, &apath)?;
    let ok = integrity.is_ok();
    let mut layers = vec![Layer::new(
        "integrity",
        integrity.map(|_| {
            "archive and every file match the manifest (SHA-256, BLAKE3, sizes, order)".into()
        }),
    )];
    if ok {
        let root = crate::json::parse_value(&mbytes)
            .ok()
            .and_then(|m| m["merkle"]["root"].as_str().map(str::to_owned))
            .unwrap_or_default();
        layers.push(Layer::new(
            "history",
            Ok::<_, IntegrityError>(format!("Merkle root {root} recomputed from the files")),
        ));
    }
    Ok(layers)
}

/// All four layers, in the order users expect: integrity, authenticity, time, history. A
/// corrupt archive fails integrity (and nothing else is judged).
pub fn verify_all(
    dir: &Path,
    name: &str,
    opts: &VerifyOptions<'_>,
) -> Result<Vec<Layer>, ReleaseError> {
    let base = verify(dir, name)?;
    let Some(history) = base.iter().find(|l| l.layer == "history").cloned() else {
        return Ok(base);
    };
    let integrity = base
        .into_iter()
        .find(|l| l.layer == "integrity")
        .ok_or_else(|| ReleaseError::Refused("no integrity verdict".into()))?;
    let mpath = dir.join(format!("{name}.manifest.json"));
    let manifest = std::fs::read(&mpath).map_err(io(&mpath))?;
    let spath = ceremony::seal_path(dir, name);
    let seal = match std::fs::read(&spath) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&spath)(e)),
    };
    // The approved TSA roots, parsed once for the time and sigstore layers (None: none).
    let parsed_roots: Option<Result<crate::tsp::Roots, String>> = opts.trust.and_then(|rt| {
        rt.tsa_roots.as_deref().map(|pem| {
            crate::tsp::Roots::from_pem(pem)
                .map_err(|e| format!("{}: {e}", ceremony::TSA_ROOTS_PATH))
        })
    });
    // Time first (internally): a retired key's signature counts when a timestamp proves the
    // seal predates the retirement.
    let time: Result<(String, Option<i64>), String> = match (&seal, opts.trust) {
        (None, _) => Err("not sealed, so there is nothing to timestamp".into()),
        (Some(_), None) => Err(opts
            .trust_problem
            .clone()
            .unwrap_or_else(|| "no trusted root to judge with".into())),
        (Some(seal), Some(rt)) => match &parsed_roots {
            // The verifier chose not to require time (offline, no authority reachable or
            // trusted): said plainly, never silently passed as if time were proven.
            None if opts.min_timestamps == 0 => Ok((
                "not checked: --min-timestamps 0 (no trusted TSA roots; the time of sealing is unproven)".into(),
                None,
            )),
            None => Err(rt
                .tsa_problem
                .clone()
                .unwrap_or_else(|| "no trusted TSA roots".into())),
            Some(roots) => {
                match roots {
                    Err(e) => Err(e.clone()),
                    Ok(roots) => {
                        let (ok, bad) = ceremony::check_tokens(
                            &ceremony::timestamps_dir(dir, name),
                            seal,
                            roots,
                        )?;
                        let need = opts.min_timestamps;
                        if !bad.is_empty() {
                            Err(format!("bad timestamp: {}", bad.join("; ")))
                        } else if ok.len() < need {
                            Err(format!(
                                "{} valid RFC 3161 timestamp(s) over the seal, {need} required",
                                ok.len()
                            ))
                        } else {
                            let earliest = ok.iter().map(|s| s.gen_time).min();
                            let list: Vec<String> = ok
                                .iter()
                                .map(|s| format!("{} by {}", s.time, s.tsa))
                                .collect();
                            Ok((
                                if ok.is_empty() {
                                    "none, and none required (--min-timestamps 0): the time of sealing is unproven".to_owned()
                                } else {
                                    format!("{} timestamp(s): {}", ok.len(), list.join("; "))
                                },
                                earliest,
                            ))
                        }
                    }
                }
            }
        },
    };
    let proven = time.as_ref().ok().and_then(|(_, t)| *t);
    let authenticity: Result<String, String> = match (&seal, opts.trust) {
        (None, _) => Err(format!(
            "not sealed: no {name}.seal.json (officers sign with `treaty release sign`, then `treaty release seal`)"
        )),
        (Some(_), None) => Err(opts
            .trust_problem
            .clone()
            .unwrap_or_else(|| "no trusted root to judge with".into())),
        (Some(seal), Some(rt)) => {
            ceremony::check_seal(name, &manifest, seal, rt, proven).map_err(|e| e.to_string()).and_then(|msg| {
                let asc_path = dir.join(format!("{name}.tar.gz.asc"));
                match std::fs::read(&asc_path) {
                    Ok(asc) => {
                        let group: Vec<_> = crate::json::from_slice::<ceremony::Seal>(seal)
                            .map(|s| s.group.members)
                            .unwrap_or_default();
                        pgp::verify(&asc, &dir.join(format!("{name}.tar.gz")), &group)
                            .map(|(who, fpr)| format!("{msg}; OpenPGP signature by {who} ({fpr})"))
                            .map_err(|e| e.to_string())
                    }
                    Err(_) => Ok(format!("{msg}; no OpenPGP signature")),
                }
            })
        }
    };
    let history: Result<String, IntegrityError> = match &opts.proof {
        None => Ok(history.detail),
        Some(p) => check_proof(&manifest, p).map(|m| format!("{}; {m}", history.detail)),
    };
    // Sigstore bundles beside the release (optional): judged only once the seal is authentic,
    // since each is a view of one signature the seal already counted.
    let bundles = match (&seal, opts.trust, authenticity.is_ok()) {
        (Some(seal), Some(rt), true) => {
            let roots = match &parsed_roots {
                Some(Ok(r)) => Ok(r),
                Some(Err(e)) => Err(e.clone()),
                None => Err(rt
                    .tsa_problem
                    .clone()
                    .unwrap_or_else(|| "no trusted TSA roots".into())),
            };
            let revoked = crate::approval::effective_revocations(&rt.revoked, proven);
            sigstore::check_release(dir, name, seal, roots, &revoked)
        }
        _ => None,
    };
    let mut layers = vec![
        integrity,
        Layer::new("authenticity", authenticity),
        Layer::new("time", time.map(|(m, _)| m)),
        Layer::new("history", history),
    ];
    if let Some(b) = bundles {
        layers.push(Layer::new("sigstore", b));
    }
    Ok(layers)
}

/// `treaty release prove`: a file's RFC 9162 inclusion proof in the manifest's Merkle tree.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    pub release: String,
    pub path: String,
    pub sha256: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub root: String,
    /// Audit path, hex, leaf to root.
    pub inclusion: Vec<String>,
}

/// The inclusion proof of `path` in the bundle `dir/name` (from the manifest alone).
pub fn prove(dir: &Path, name: &str, path: &str) -> Result<Proof, ReleaseError> {
    let mpath = dir.join(format!("{name}.manifest.json"));
    let m: serde_json::Value =
        crate::json::parse_value(&std::fs::read(&mpath).map_err(io(&mpath))?)
            .map_err(|e| ReleaseError::Refused(format!("{}: {e}", mpath.display())))?;
    let files = m["files"]
        .as_array()
        .ok_or_else(|| ReleaseError::Refused("manifest lacks files".into()))?;
    let mut tree = merkle::Tree::new();
    let mut index = None;
    let mut sha = String::new();
    for (i, f) in files.iter().enumerate() {
        let (Some(p), Some(h)) = (f["path"].as_str(), f["sha256"].as_str()) else {
            return Err(ReleaseError::Refused(format!(
                "manifest file {i} lacks path or sha256"
            )));
        };
        if p == path {
            index = Some(i);
            sha = h.to_owned();
        }
        tree.push(merkle::leaf_hash(&leaf_data(p, h)));
    }
    let i =
        index.ok_or_else(|| ReleaseError::Refused(format!("{path} is not in release {name}")))?;
    let root = hex::encode(tree.root());
    if m["merkle"]["root"].as_str() != Some(root.as_str()) {
        return Err(ReleaseError::Refused(
            "the manifest's Merkle root does not match its files".into(),
        ));
    }
    let proof = tree
        .inclusion_proof(i, tree.len())
        .ok_or_else(|| ReleaseError::Refused("no proof".into()))?;
    Ok(Proof {
        release: name.to_owned(),
        path: path.to_owned(),
        sha256: sha,
        leaf_index: i as u64,
        tree_size: tree.len() as u64,
        root,
        inclusion: proof.iter().map(hex::encode).collect(),
    })
}

/// Why a release's integrity or a proof does not check out: findings about the artefacts,
/// reported as a layer's verdict (never a failure of the tool).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    #[error("{path}: not JSON: {reason}")]
    ManifestNotJson { path: String, reason: String },
    #[error("manifest lacks {field}")]
    ManifestLacks { field: &'static str },
    #[error("{path} is missing")]
    ArchiveMissing { path: String },
    #[error("the archive's SHA-256 differs from the manifest's (corrupt or replaced archive)")]
    ArchiveSha256,
    #[error("the archive's BLAKE3 differs from the manifest's")]
    ArchiveBlake3,
    #[error("archive is not a tar.gz: {reason}")]
    NotTarGz { reason: String },
    #[error("archive entry unreadable: {reason}")]
    EntryUnreadable { reason: String },
    #[error("archive holds a non-regular entry ({kind}): refused")]
    NonRegular { kind: String },
    #[error("archive entry {path:?}: {reason}")]
    BadPath { path: String, reason: String },
    #[error("the archive holds more files than the manifest lists ({path:?} is extra)")]
    Extra { path: String },
    #[error("archive entry {path:?} is not the manifest's {listed} (added, removed or reordered)")]
    Reordered { path: String, listed: String },
    #[error("{path}: content differs from the manifest")]
    ContentDiffers { path: String },
    #[error("the archive holds {have} files, the manifest lists {listed}")]
    Count { have: usize, listed: usize },
    #[error("the Merkle root does not match the files")]
    RootMismatch,
    #[error("not a proof: {reason}")]
    NotAProof { reason: String },
    #[error("the proof is for another tree (root or size differs from the manifest)")]
    OtherTree,
    #[error("proof hash {value:?} is not 32 bytes of hex")]
    BadHash { value: String },
    #[error("the inclusion proof for {path} does not verify")]
    Inclusion { path: String },
}

/// Checks a proof against the manifest's root and the file's listed digest.
pub fn check_proof(manifest: &[u8], proof: &[u8]) -> Result<String, IntegrityError> {
    let p: Proof = crate::json::from_slice(proof).map_err(|e| IntegrityError::NotAProof {
        reason: e.to_string(),
    })?;
    let m: serde_json::Value =
        crate::json::parse_value(manifest).map_err(|e| IntegrityError::ManifestNotJson {
            path: "manifest".into(),
            reason: e.to_string(),
        })?;
    let root = m["merkle"]["root"].as_str().unwrap_or_default();
    let size = m["merkle"]["tree_size"].as_u64().unwrap_or_default();
    if p.root != root || p.tree_size != size {
        return Err(IntegrityError::OtherTree);
    }
    let unhex = |h: &str| -> Result<merkle::Hash, IntegrityError> {
        hex::decode(h)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| IntegrityError::BadHash {
                value: h.to_owned(),
            })
    };
    let path = p
        .inclusion
        .iter()
        .map(|h| unhex(h))
        .collect::<Result<Vec<_>, _>>()?;
    let root_b = unhex(root)?;
    let leaf = merkle::leaf_hash(&leaf_data(&p.path, &p.sha256));
    if !merkle::verify_inclusion(p.leaf_index, p.tree_size, &leaf, &path, &root_b) {
        return Err(IntegrityError::Inclusion { path: p.path });
    }
    Ok(format!(
        "{} (sha256 {}) is leaf {} of {}",
        p.path, p.sha256, p.leaf_index, p.tree_size
    ))
}

/// Streams the archive twice: once for its digests, once through gunzip and tar to check
/// every entry against the manifest. Entries are never written to disk; anything but a
/// regular file with a clean relative path is refused.
fn check_integrity(
    mpath: &Path,
    mbytes: &[u8],
    apath: &Path,
) -> Result<Result<(), IntegrityError>, ReleaseError> {
    let m: serde_json::Value = match crate::json::from_slice(mbytes) {
        Ok(v) => v,
        Err(e) => {
            return Ok(Err(IntegrityError::ManifestNotJson {
                path: mpath.display().to_string(),
                reason: e.to_string(),
            }))
        }
    };
    let want = |k: &str, field: &'static str| {
        m["archive"][k]
            .as_str()
            .map(str::to_owned)
            .ok_or(IntegrityError::ManifestLacks { field })
    };
    let (want_sha, want_b3) = match (
        want("sha256", "archive.sha256"),
        want("blake3", "archive.blake3"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    let (_, sha, b3) = match digest_file(apath) {
        Ok(d) => d,
        Err(ReleaseError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err(IntegrityError::ArchiveMissing {
                path: apath.display().to_string(),
            }))
        }
        Err(e) => return Err(e),
    };
    if sha != want_sha {
        return Ok(Err(IntegrityError::ArchiveSha256));
    }
    if b3 != want_b3 {
        return Ok(Err(IntegrityError::ArchiveBlake3));
    }
    let f = std::fs::File::open(apath).map_err(io(apath))?;
    Ok(check_entries(
        &m,
        std::io::BufReader::with_capacity(CHUNK, f),
    ))
}

/// The entry checks of the integrity layer over in-memory bytes, without the archive-digest
/// check that [`verify`] makes first (so fuzzing reaches the tar and gzip parsers).
pub fn check_archive_entries(manifest: &[u8], archive: &[u8]) -> Result<(), IntegrityError> {
    let m: serde_json::Value =
        crate::json::from_slice(manifest).map_err(|e| IntegrityError::ManifestNotJson {
            path: "manifest".into(),
            reason: e.to_string(),
        })?;
    check_entries(&m, archive)
}

fn check_entries(m: &serde_json::Value, archive: impl std::io::Read) -> Result<(), IntegrityError> {
    let listed = m["files"]
        .as_array()
        .ok_or(IntegrityError::ManifestLacks { field: "files" })?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let entries = tar.entries().map_err(|e| IntegrityError::NotTarGz {
        reason: e.to_string(),
    })?;
    let mut tree = merkle::Tree::new();
    let mut count = 0usize;
    for e in entries {
        let mut e = e.map_err(|e| IntegrityError::EntryUnreadable {
            reason: e.to_string(),
        })?;
        if e.header().entry_type() != tar::EntryType::Regular {
            return Err(IntegrityError::NonRegular {
                kind: format!("{:?}", e.header().entry_type()),
            });
        }
        let path = e
            .path()
            .map_err(|err| IntegrityError::BadPath {
                path: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                reason: err.to_string(),
            })?
            .to_string_lossy()
            .into_owned();
        crate::path::RepoPath::new(&path).map_err(|err| IntegrityError::BadPath {
            path: path.clone(),
            reason: err.to_string(),
        })?;
        let Some(l) = listed.get(count) else {
            return Err(IntegrityError::Extra { path });
        };
        count += 1;
        if l["path"].as_str() != Some(path.as_str()) {
            return Err(IntegrityError::Reordered {
                path,
                listed: l["path"].to_string(),
            });
        }
        let mut d = Digester::default();
        let mut buf = vec![0u8; CHUNK.min(256 * 1024)];
        loop {
            let n = std::io::Read::read(&mut e, &mut buf).map_err(|err| {
                IntegrityError::EntryUnreadable {
                    reason: format!("{path}: {err}"),
                }
            })?;
            if n == 0 {
                break;
            }
            d.update(&buf[..n]);
        }
        let (size, sha, b3) = d.finish();
        if l["sha256"].as_str() != Some(sha.as_str())
            || l["blake3"].as_str() != Some(b3.as_str())
            || l["size"].as_u64() != Some(size)
        {
            return Err(IntegrityError::ContentDiffers { path });
        }
        tree.push(merkle::leaf_hash(&leaf_data(&path, &sha)));
    }
    if count != listed.len() {
        return Err(IntegrityError::Count {
            have: count,
            listed: listed.len(),
        });
    }
    if m["merkle"]["root"].as_str() != Some(hex::encode(tree.root()).as_str()) {
        return Err(IntegrityError::RootMismatch);
    }
    Ok(())
}
