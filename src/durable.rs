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

/// A temporary file that is removed when this guard is dropped, unless [`RemoveOnDrop::keep`]
/// was called (after it was renamed into place): every early return of a streaming writer (a
/// release bundle) cleans up after itself.
#[derive(Debug)]
pub struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    pub fn new(path: PathBuf) -> Self {
        RemoveOnDrop(Some(path))
    }
    /// The file was moved into place: nothing to remove.
    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// One change to a file within a [`replace_all`].
#[derive(Debug, Clone)]
pub enum Change {
    /// Replace (or create) the file with these bytes.
    Write(PathBuf, Vec<u8>),
    /// Remove the file if it exists.
    Remove(PathBuf),
}

/// Applies several file changes as one: every new content is first written to a temporary file
/// and synced; only then are targets moved aside and the new files moved in. If any step fails,
/// everything done so far is undone (targets restored from their moved-aside copies, temporary
/// files removed), so a root update never leaves `keys/root.json` rewritten without its kept
/// copy in `keys/roots/` — a state that would block the retry. (A crash between two renames can
/// still leave a mix; the moved-aside copies, `.NAME.old-PID-N`, then hold the previous files.)
pub fn replace_all(changes: &[Change]) -> Result<(), WriteError> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let side = |p: &Path, what: &str| {
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        p.with_file_name(format!(".{name}.{what}-{}-{seq}", std::process::id()))
    };
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError { path, source }
    };
    // Phase 1: every new content on disk beside its target, synced.
    let mut temps: Vec<Option<PathBuf>> = Vec::new();
    let cleanup = |temps: &[Option<PathBuf>]| {
        for t in temps.iter().flatten() {
            let _ = std::fs::remove_file(t);
        }
    };
    for c in changes {
        match c {
            Change::Write(p, bytes) => {
                let tmp = side(p, "new");
                let r = (|| {
                    if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(d)?;
                    }
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&tmp)?;
                    f.write_all(bytes)?;
                    f.sync_all()
                })();
                if let Err(e) = r {
                    let _ = std::fs::remove_file(&tmp);
                    cleanup(&temps);
                    return Err(err(p)(e));
                }
                temps.push(Some(tmp));
            }
            Change::Remove(_) => temps.push(None),
        }
    }
    // Phase 2: move each target aside, then the new file in; undo everything on a failure.
    let mut done: Vec<(PathBuf, Option<PathBuf>, bool)> = Vec::new(); // (target, aside, new in place)
    let undo = |done: &[(PathBuf, Option<PathBuf>, bool)]| {
        for (target, aside, placed) in done.iter().rev() {
            if *placed {
                let _ = std::fs::remove_file(target);
            }
            if let Some(a) = aside {
                let _ = std::fs::rename(a, target);
            }
        }
    };
    for (c, tmp) in changes.iter().zip(&temps) {
        let target = match c {
            Change::Write(p, _) | Change::Remove(p) => p,
        };
        let aside = match std::fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => {
                undo(&done);
                cleanup(&temps);
                return Err(err(target)(std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "a directory is in the way",
                )));
            }
            Ok(_) => {
                let a = side(target, "old");
                if let Err(e) = std::fs::rename(target, &a) {
                    undo(&done);
                    cleanup(&temps);
                    return Err(err(target)(e));
                }
                Some(a)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                undo(&done);
                cleanup(&temps);
                return Err(err(target)(e));
            }
        };
        let placed = match tmp {
            Some(t) => {
                if let Err(e) = std::fs::rename(t, target) {
                    done.push((target.clone(), aside, false));
                    undo(&done);
                    cleanup(&temps);
                    return Err(err(target)(e));
                }
                true
            }
            None => false,
        };
        done.push((target.clone(), aside, placed));
    }
    for (target, aside, _) in &done {
        if let Some(a) = aside {
            let _ = std::fs::remove_file(a);
        }
        if let Some(d) = target.parent() {
            if let Ok(f) = std::fs::File::open(if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }) {
                let _ = f.sync_all();
            }
        }
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

    #[test]
    fn replace_all_is_all_or_nothing() {
        use super::Change;
        let d = tempfile::tempdir().unwrap();
        let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
        std::fs::write(&a, b"old a").unwrap();
        std::fs::write(&c, b"old c").unwrap();
        // A directory in the way of the second write: nothing changes, nothing is left behind.
        std::fs::create_dir(&b).unwrap();
        let r = super::replace_all(&[
            Change::Write(a.clone(), b"new a".to_vec()),
            Change::Write(b.clone(), b"new b".to_vec()),
            Change::Remove(c.clone()),
        ]);
        assert!(r.is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"old a");
        assert_eq!(std::fs::read(&c).unwrap(), b"old c");
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            3,
            "litter left"
        );
        // The honest twin: all three happen.
        std::fs::remove_dir(&b).unwrap();
        super::replace_all(&[
            Change::Write(a.clone(), b"new a".to_vec()),
            Change::Write(b.clone(), b"new b".to_vec()),
            Change::Remove(c.clone()),
        ])
        .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"new a");
        assert_eq!(std::fs::read(&b).unwrap(), b"new b");
        assert!(!c.exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
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
