//! Reading the governed part of a repository: from git objects at a revision, or from the work
//! tree.
//!
//! Owns revision resolution and tree walking. It reads only below the governed folders, never
//! writes to the work tree or the index, and never follows a symlink: symlinks, submodules and
//! undecodable names are returned as entries so that verification can reject them by name.

use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::governance::{GOVERNED_TOPS, MAX_FILE_BYTES};
use crate::path::RepoPath;

/// Errors that stop the tool from judging at all (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("cannot open a git repository at {path}: {reason}")]
    OpenRepo { path: String, reason: String },
    #[error("cannot resolve revision {rev:?}: {reason}")]
    Revision { rev: String, reason: String },
    #[error("cannot read git object {what}: {reason}")]
    Object { what: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What sits at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File(Vec<u8>),
    TooLarge(u64),
    Symlink,
    /// A submodule (gitlink) or anything else that is not a regular file.
    NotAFile,
}

/// The governed entries of one tree, plus names that are not valid paths.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub entries: BTreeMap<RepoPath, Entry>,
    /// Entries whose names failed [`RepoPath`] validation: (lossy name, reason).
    pub bad_names: Vec<(String, String)>,
    /// Git blob ids where known (from git objects), for cheap comparisons.
    pub blob_ids: BTreeMap<RepoPath, git2::Oid>,
}

impl Tree {
    pub fn file(&self, p: &str) -> Option<&[u8]> {
        let p = RepoPath::new(p).ok()?;
        match self.entries.get(&p) {
            Some(Entry::File(b)) => Some(b),
            _ => None,
        }
    }
}

/// A repository, opened once.
pub struct Repo {
    pub repo: git2::Repository,
}

impl Repo {
    /// Opens the repository containing `dir` (searching upwards, as git does).
    pub fn discover(dir: &Path) -> Result<Self, SourceError> {
        git2::Repository::discover(dir)
            .map(|repo| Self { repo })
            .map_err(|e| SourceError::OpenRepo {
                path: dir.display().to_string(),
                reason: e.message().to_owned(),
            })
    }

    /// The work tree root, if the repository has one.
    pub fn workdir(&self) -> Option<PathBuf> {
        self.repo.workdir().map(Path::to_path_buf)
    }

    /// Resolves `rev` to a commit id.
    pub fn resolve(&self, rev: &str) -> Result<git2::Oid, SourceError> {
        let obj = self
            .repo
            .revparse_single(rev)
            .map_err(|e| SourceError::Revision {
                rev: rev.to_owned(),
                reason: e.message().to_owned(),
            })?;
        obj.peel_to_commit()
            .map(|c| c.id())
            .map_err(|e| SourceError::Revision {
                rev: rev.to_owned(),
                reason: format!("not a commit: {}", e.message()),
            })
    }

    /// The first parent of `commit`, if any.
    pub fn first_parent(&self, commit: git2::Oid) -> Result<Option<git2::Oid>, SourceError> {
        let c = self
            .repo
            .find_commit(commit)
            .map_err(|e| SourceError::Object {
                what: commit.to_string(),
                reason: e.message().to_owned(),
            })?;
        Ok(c.parent_ids().next())
    }

    /// Reads the governed entries of `commit`'s tree from git objects.
    pub fn tree_at(&self, commit: git2::Oid) -> Result<Tree, SourceError> {
        let obj_err = |what: String| {
            move |e: git2::Error| SourceError::Object {
                what: what.clone(),
                reason: e.message().to_owned(),
            }
        };
        let c = self
            .repo
            .find_commit(commit)
            .map_err(obj_err(commit.to_string()))?;
        let root = c.tree().map_err(obj_err(format!("tree of {commit}")))?;
        let mut out = Tree::default();
        let mut blobs: Vec<(RepoPath, git2::Oid)> = Vec::new();
        for top in GOVERNED_TOPS {
            let Some(te) = root.get_name(top) else {
                continue;
            };
            let mut stack = vec![(top.as_bytes().to_vec(), te.id(), te.filemode())];
            while let Some((name, id, mode)) = stack.pop() {
                match mode {
                    0o040000 => {
                        let t = self
                            .repo
                            .find_tree(id)
                            .map_err(obj_err(String::from_utf8_lossy(&name).into()))?;
                        for e in t.iter() {
                            let mut child = name.clone();
                            child.push(b'/');
                            child.extend_from_slice(e.name_bytes());
                            stack.push((child, e.id(), e.filemode()));
                        }
                    }
                    _ => {
                        let path = match RepoPath::from_bytes(&name) {
                            Ok(p) => p,
                            Err(e) => {
                                out.bad_names.push((
                                    String::from_utf8_lossy(&name).into_owned(),
                                    e.to_string(),
                                ));
                                continue;
                            }
                        };
                        out.blob_ids.insert(path.clone(), id);
                        match mode {
                            0o100644 | 0o100755 | 0o100664 => blobs.push((path, id)),
                            0o120000 => {
                                out.entries.insert(path, Entry::Symlink);
                            }
                            _ => {
                                out.entries.insert(path, Entry::NotAFile);
                            }
                        }
                    }
                }
            }
        }
        // Inflating blobs dominates reading a large tree, so it runs on every core, each
        // worker with its own handle (a git2 repository is not shareable across threads).
        let git_dir = self.repo.path().to_path_buf();
        let read: Vec<Result<(RepoPath, Entry), SourceError>> = blobs
            .into_par_iter()
            .map_init(
                || git2::Repository::open(&git_dir),
                |repo, (path, id)| {
                    let repo = repo.as_ref().map_err(|e| SourceError::OpenRepo {
                        path: git_dir.display().to_string(),
                        reason: e.message().to_owned(),
                    })?;
                    let odb = repo.odb().map_err(obj_err("object database".into()))?;
                    // The header first: a hostile multi-gigabyte blob is never inflated.
                    let (size, _) = odb.read_header(id).map_err(obj_err(path.to_string()))?;
                    let entry = if size as u64 > MAX_FILE_BYTES {
                        Entry::TooLarge(size as u64)
                    } else {
                        let obj = odb.read(id).map_err(obj_err(path.to_string()))?;
                        Entry::File(obj.data().to_vec())
                    };
                    Ok((path, entry))
                },
            )
            .collect();
        for r in read {
            let (path, entry) = r?;
            out.entries.insert(path, entry);
        }
        Ok(out)
    }
}

/// Reads the governed entries of a work tree from disk (`--worktree`).
pub fn tree_from_dir(root: &Path) -> Result<Tree, SourceError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| SourceError::Io { path, source }
    };
    let mut out = Tree::default();
    for top in GOVERNED_TOPS {
        let dir = root.join(top);
        let meta = match std::fs::symlink_metadata(&dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut stack = vec![(top.to_owned().into_bytes(), dir, meta)];
        while let Some((name, p, meta)) = stack.pop() {
            let ft = meta.file_type();
            if ft.is_dir() {
                for e in std::fs::read_dir(&p).map_err(io(&p))? {
                    let e = e.map_err(io(&p))?;
                    let mut child = name.clone();
                    child.push(b'/');
                    child.extend_from_slice(e.file_name().as_encoded_bytes());
                    let m = std::fs::symlink_metadata(e.path()).map_err(io(&e.path()))?;
                    stack.push((child, e.path(), m));
                }
                continue;
            }
            let path = match RepoPath::from_bytes(&name) {
                Ok(rp) => rp,
                Err(e) => {
                    out.bad_names
                        .push((String::from_utf8_lossy(&name).into_owned(), e.to_string()));
                    continue;
                }
            };
            let entry = if ft.is_symlink() {
                Entry::Symlink
            } else if !ft.is_file() {
                Entry::NotAFile
            } else if meta.len() > MAX_FILE_BYTES {
                Entry::TooLarge(meta.len())
            } else {
                Entry::File(std::fs::read(&p).map_err(io(&p))?)
            };
            out.entries.insert(path, entry);
        }
    }
    Ok(out)
}
