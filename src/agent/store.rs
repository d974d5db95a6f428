//! The agent's storage seam and the records kept through it: what was applied
//! (`applied.json`), the write-ahead record of a step (`inflight.json`) and its done log
//! (`inflight.done`). Every replacement is atomic and durable (temp file, fsync, rename, fsync the
//! directory); the seam lets tests inject read-only, full and crashing storage. It never decides
//! what to write: [`super::step`] does.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The storage seam: named small files, replaced atomically.
pub trait Store {
    fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>>;
    /// Temp file, fsync, rename, fsync the directory.
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()>;
    fn remove(&self, name: &str) -> std::io::Result<()>;
    /// Appends `bytes` and fsyncs (the per-command "done" record: O(1) a delivery).
    fn append(&self, name: &str, bytes: &[u8]) -> std::io::Result<()>;
}

/// The real store: a directory.
#[derive(Debug, Clone)]
pub struct DirStore {
    pub dir: PathBuf,
}

impl Store for DirStore {
    fn read(&self, name: &str) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        write_durably(&self.dir, name, bytes)
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.dir.join(name)) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn append(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.dir.join(name);
        let existed = path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        if !existed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Temp file in the same directory, fsync, rename over `name`, fsync the directory: after a
/// crash the file is either the old or the new bytes, never a mix.
pub fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// What was applied last (`applied.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applied {
    pub commit: String,
    pub root_version: u64,
    pub snapshot_version: u64,
    /// Every document's version at that commit.
    pub versions: BTreeMap<String, u64>,
    /// When the heartbeat this state was accepted with was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_issued: Option<String>,
}

/// The write-ahead record (`inflight.json`): the commands of one step, written once before
/// the first delivery; which are done is appended to `inflight.done`, one key a line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inflight {
    pub target: Applied,
    pub commands: Vec<serde_json::Value>,
    pub done: BTreeSet<String>,
}
