//! Durable file writes (base layer): the one way the tool replaces a file.
//!
//! A write goes to a new temporary file beside the target (created exclusively, so nothing
//! already there — a symlink an attacker placed — is followed or truncated), is flushed to disk,
//! then renamed over the target, and the directory is synced. On any failure — a full disk, a
//! quota, a read-only file system — the temporary file is removed and the target is untouched:
//! no 0-byte `.sig` under `treaties/`, no half-written key, nothing for `verify --worktree` to
//! trip over.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A write that did not happen; the target is unchanged and no temporary file is left.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Replaces `path` with `bytes`, atomically and durably (see the module doc). `mode` sets the
/// new file's permissions on Unix from its creation (e.g. 0o600 for a private key).
pub fn write(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), WriteError> {
    let err = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    // Unique per process and call: two writers in one process never share a temporary name.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{seq}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(mode.unwrap_or(0o644));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(err)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    // The rename is durable once the directory entry is: best effort (not every file system
    // lets a directory be opened for syncing).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_write_replaces_the_file_and_leaves_nothing_beside_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.sig");
        super::write(&p, b"one", None).unwrap();
        super::write(&p, b"two", None).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_temporary_name_is_never_followed() {
        // The temporary name is unique per call; even a guessed one is created exclusively.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        super::write(&p, b"secret", Some(0o600)).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
