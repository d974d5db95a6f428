//! Release bundles: a deterministic `NAME.tar.gz`, its manifest and `SHA256SUMS`.
//!
//! Owns the first step of the release ceremony (`treaty release bundle`): the same input and
//! the same tool version give the same bytes, so anyone can rebuild a bundle and compare. Tar
//! entries are sorted by path, ustar headers carry mode 0644, uid/gid 0, empty owner names and
//! mtime 0; the gzip header has mtime 0 and OS byte 255 (unknown); the compressor is flate2's
//! default backend (miniz_oxide, pinned by Cargo.lock) at level 9. The manifest lists every
//! file's path, size, SHA-256 and BLAKE3, the archive's digests, and an RFC 9162 Merkle root
//! over the files (leaf encoding in [`leaf_data`]). Signing, sealing and timestamps come later.

use flate2::{Compression, GzBuilder};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

use crate::crypto::{blake3_hex, sha256_hex};
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

/// Writes the bundle for `files` (path → bytes; paths are sorted here) into `dir`.
/// Returns the manifest.
pub fn bundle(
    dir: &Path,
    name: &str,
    mut files: Vec<(String, Vec<u8>)>,
    source: serde_json::Value,
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
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(9));
    {
        let mut tar = tar::Builder::new(&mut gz);
        tar.mode(tar::HeaderMode::Deterministic);
        for (p, bytes) in &files {
            let mut h = tar::Header::new_ustar();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, p, bytes.as_slice())
                .map_err(io(dir))?;
        }
        tar.finish().map_err(io(dir))?;
    }
    let archive = gz.finish().map_err(io(dir))?;
    let tar_name = format!("{name}.tar.gz");
    let mut tree = merkle::Tree::new();
    let entries: Vec<FileEntry> = files
        .iter()
        .map(|(p, b)| {
            let sha = sha256_hex(b);
            tree.push(merkle::leaf_hash(&leaf_data(p, &sha)));
            FileEntry {
                path: p.clone(),
                size: b.len() as u64,
                sha256: sha,
                blake3: blake3_hex(b),
            }
        })
        .collect();
    let manifest = Manifest {
        spec_version: crate::SPEC_VERSION,
        kind: "treaty-release-manifest",
        name: name.to_owned(),
        tool: format!("treaty {}", env!("CARGO_PKG_VERSION")),
        source,
        files: entries,
        archive: Digests {
            name: tar_name.clone(),
            size: archive.len() as u64,
            sha256: sha256_hex(&archive),
            blake3: blake3_hex(&archive),
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
    write(&dir.join(&tar_name), &archive)?;
    write(&dir.join(&manifest_name), &mbytes)?;
    let mut sums = [
        (tar_name, sha256_hex(&archive)),
        (manifest_name, sha256_hex(&mbytes)),
    ];
    sums.sort();
    let text: String = sums.iter().map(|(n, h)| format!("{h}  {n}\n")).collect();
    write(&dir.join("SHA256SUMS"), text.as_bytes())?;
    Ok(manifest)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReleaseError> {
    let tmp = path.with_extension("tmp-treaty");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_byte_identical_for_the_same_input_in_any_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let files = vec![
            ("z/b.json".to_owned(), b"2".to_vec()),
            ("a.json".to_owned(), b"1".to_vec()),
        ];
        let mut rev = files.clone();
        rev.reverse();
        bundle(a.path(), "r", files, serde_json::json!("artifacts")).unwrap();
        bundle(b.path(), "r", rev, serde_json::json!("artifacts")).unwrap();
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
                ("x".into(), b"a".to_vec()),
                ("y".into(), b"b".to_vec()),
                ("w".into(), vec![]),
            ],
            serde_json::json!("artifacts"),
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
        assert!(bundle(d.path(), "../x", vec![], serde_json::json!(null)).is_err());
        assert!(bundle(
            d.path(),
            "r",
            vec![("../etc/passwd".into(), vec![])],
            serde_json::json!(null)
        )
        .is_err());
        assert!(bundle(
            d.path(),
            "r",
            vec![("a".into(), vec![]), ("a".into(), vec![1])],
            serde_json::json!(null)
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

/// Verifies the integrity and history layers of the bundle `dir/name`: the archive's digests
/// against the manifest, every tar entry (regular files only, valid relative paths, never
/// written to disk) against the manifest's list, and the Merkle root recomputed from the
/// entries. Authenticity (signatures) and time (RFC 3161) are reported as not sealed yet.
pub fn verify(dir: &Path, name: &str) -> Result<Vec<Layer>, ReleaseError> {
    let mpath = dir.join(format!("{name}.manifest.json"));
    let mbytes = std::fs::read(&mpath).map_err(io(&mpath))?;
    let mut layers = Vec::new();
    let m: serde_json::Value = match serde_json::from_slice(&mbytes) {
        Ok(v) => v,
        Err(e) => {
            layers.push(Layer {
                layer: "integrity",
                ok: false,
                detail: format!("{}: not JSON: {e}", mpath.display()),
            });
            return Ok(layers);
        }
    };
    let apath = dir.join(format!("{name}.tar.gz"));
    let archive = std::fs::read(&apath).map_err(io(&apath))?;
    let integrity = check_integrity(&m, &archive);
    let ok = integrity.is_ok();
    layers.push(Layer {
        layer: "integrity",
        ok,
        detail: integrity
            .clone()
            .err()
            .unwrap_or_else(|| "archive and every file match the manifest".into()),
    });
    if !ok {
        return Ok(layers);
    }
    layers.push(Layer {
        layer: "authenticity",
        ok: false,
        detail: "not sealed: no release signatures yet".into(),
    });
    layers.push(Layer {
        layer: "time",
        ok: false,
        detail: "no RFC 3161 timestamps yet".into(),
    });
    layers.push(Layer {
        layer: "history",
        ok: true,
        detail: format!(
            "Merkle root {} recomputed from the files",
            m["merkle"]["root"].as_str().unwrap_or("")
        ),
    });
    Ok(layers)
}

fn check_integrity(m: &serde_json::Value, archive: &[u8]) -> Result<(), String> {
    let want = |k: &str| {
        m["archive"][k]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("manifest lacks archive.{k}"))
    };
    if sha256_hex(archive) != want("sha256")? {
        return Err(
            "the archive's SHA-256 differs from the manifest's (corrupt or replaced archive)"
                .into(),
        );
    }
    if blake3_hex(archive) != want("blake3")? {
        return Err("the archive's BLAKE3 differs from the manifest's".into());
    }
    let listed = m["files"].as_array().ok_or("manifest lacks files")?;
    let mut found = Vec::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let entries = tar
        .entries()
        .map_err(|e| format!("archive is not a tar.gz: {e}"))?;
    for e in entries {
        let mut e = e.map_err(|e| format!("archive entry unreadable: {e}"))?;
        if e.header().entry_type() != tar::EntryType::Regular {
            return Err(format!(
                "archive holds a non-regular entry ({:?}): refused",
                e.header().entry_type()
            ));
        }
        let path = e
            .path()
            .map_err(|e| format!("bad entry path: {e}"))?
            .to_string_lossy()
            .into_owned();
        crate::path::RepoPath::new(&path)
            .map_err(|err| format!("archive entry {path:?}: {err}"))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).map_err(|e| format!("{path}: {e}"))?;
        found.push((path, bytes));
    }
    if found.len() != listed.len() {
        return Err(format!(
            "the archive holds {} files, the manifest lists {}",
            found.len(),
            listed.len()
        ));
    }
    let mut tree = merkle::Tree::new();
    for ((path, bytes), l) in found.iter().zip(listed) {
        if l["path"].as_str() != Some(path.as_str()) {
            return Err(format!(
                "archive entry {path:?} is not the manifest's {} (added, removed or reordered)",
                l["path"]
            ));
        }
        let sha = sha256_hex(bytes);
        if l["sha256"].as_str() != Some(sha.as_str())
            || l["blake3"].as_str() != Some(blake3_hex(bytes).as_str())
            || l["size"].as_u64() != Some(bytes.len() as u64)
        {
            return Err(format!("{path}: content differs from the manifest"));
        }
        tree.push(merkle::leaf_hash(&leaf_data(path, &sha)));
    }
    if m["merkle"]["root"].as_str() != Some(hex::encode(tree.root()).as_str()) {
        return Err("the Merkle root does not match the files".into());
    }
    Ok(())
}
