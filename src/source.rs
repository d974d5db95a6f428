//! Reading the governed part of a repository: from git objects at a revision, or from the work
//! tree.
//!
//! Owns revision resolution and tree walking. It reads only below the governed folders, never
//! writes to the work tree or the index, and never follows a symlink: symlinks, submodules and
//! undecodable names are returned as entries so that verification can reject them by name.

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
    /// A regular file whose bytes are in memory (work tree, or built in memory).
    File(Vec<u8>),
    /// A regular file in git's object database, read when needed: a large repository is never
    /// held in memory at once, and workers inflate blobs in parallel.
    Blob(git2::Oid),
    TooLarge(u64),
    Symlink,
    /// A submodule (gitlink) or anything else that is not a regular file.
    NotAFile,
}

/// Why a file's bytes could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Not a regular file, or absent.
    NotAFile,
    /// Over [`MAX_FILE_BYTES`]; never inflated.
    TooLarge(u64),
    /// The object database failed: the tool cannot judge (exit 2).
    Git(String),
}

/// The governed entries of one tree, plus names that are not valid paths.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub entries: BTreeMap<RepoPath, Entry>,
    /// Entries whose names failed [`RepoPath`] validation: (lossy name, reason).
    pub bad_names: Vec<(String, String)>,
    /// Git blob ids where known (from git objects), for cheap comparisons.
    pub blob_ids: BTreeMap<RepoPath, git2::Oid>,
    /// The repository that [`Entry::Blob`]s are read from.
    pub git_dir: Option<PathBuf>,
    /// Object database failures met while reading lazily; a caller that sees any must not
    /// trust a verdict built on this tree.
    read_errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

thread_local! {
    /// One repository handle per thread: git2 repositories cannot be shared across threads.
    static REPO: std::cell::RefCell<Option<(PathBuf, git2::Repository)>> = const { std::cell::RefCell::new(None) };
}

/// Reads a blob with this thread's handle on `git_dir` (header first; over the size limit is
/// [`ReadError::TooLarge`]). Safe to call from any number of worker threads.
pub fn read_blob(git_dir: &Path, oid: git2::Oid) -> Result<Vec<u8>, ReadError> {
    REPO.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(d, _)| d != git_dir) {
            let repo = git2::Repository::open(git_dir)
                .map_err(|e| ReadError::Git(format!("{}: {}", git_dir.display(), e.message())))?;
            *slot = Some((git_dir.to_path_buf(), repo));
        }
        let Some((_, repo)) = slot.as_ref() else {
            return Err(ReadError::Git("repository handle unavailable".into()));
        };
        let odb = repo
            .odb()
            .map_err(|e| ReadError::Git(e.message().to_owned()))?;
        // The header first: a hostile multi-gigabyte blob is never inflated.
        let (size, _) = odb
            .read_header(oid)
            .map_err(|e| ReadError::Git(format!("object {oid}: {}", e.message())))?;
        if size as u64 > MAX_FILE_BYTES {
            return Err(ReadError::TooLarge(size as u64));
        }
        let obj = odb
            .read(oid)
            .map_err(|e| ReadError::Git(format!("object {oid}: {}", e.message())))?;
        Ok(obj.data().to_vec())
    })
}

impl Tree {
    /// The bytes at `p`.
    pub fn read(&self, p: &RepoPath) -> Result<std::borrow::Cow<'_, [u8]>, ReadError> {
        match self.entries.get(p) {
            Some(Entry::File(b)) => Ok(std::borrow::Cow::Borrowed(b)),
            Some(Entry::Blob(oid)) => {
                let dir = self
                    .git_dir
                    .as_deref()
                    .ok_or_else(|| ReadError::Git("no repository for blob".into()))?;
                match read_blob(dir, *oid) {
                    Ok(b) => Ok(std::borrow::Cow::Owned(b)),
                    Err(ReadError::Git(m)) => {
                        if let Ok(mut errs) = self.read_errors.lock() {
                            errs.push(format!("{p}: {m}"));
                        }
                        Err(ReadError::Git(m))
                    }
                    Err(e) => Err(e),
                }
            }
            Some(Entry::TooLarge(n)) => Err(ReadError::TooLarge(*n)),
            _ => Err(ReadError::NotAFile),
        }
    }

    /// The bytes at `p` when it is a readable regular file within the size limit.
    pub fn file(&self, p: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        let p = RepoPath::new(p).ok()?;
        self.read(&p).ok()
    }

    /// Object database failures met so far.
    pub fn read_errors(&self) -> Vec<String> {
        self.read_errors
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
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

    /// The governed entries of `commit` and of its first parent (what verification judges
    /// rollback and equivocation against), if it has one.
    pub fn tree_and_parent(&self, commit: git2::Oid) -> Result<(Tree, Option<Tree>), SourceError> {
        let tree = self.tree_at(commit)?;
        let parent = self
            .first_parent(commit)?
            .map(|p| self.tree_at(p))
            .transpose()?;
        Ok((tree, parent))
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
        for (path, id) in blobs {
            out.entries.insert(path, Entry::Blob(id));
        }
        out.git_dir = Some(self.repo.path().to_path_buf());
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
