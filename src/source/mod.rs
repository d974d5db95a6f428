//! Reading the governed part of a repository: from git objects at a revision, or from the work
//! tree.
//!
//! Owns revision resolution and tree walking. It reads only below the governed folders, never
//! writes to the work tree or the index, and never follows a symlink: symlinks, submodules and
//! undecodable names are returned as entries so that verification can reject them by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod history;

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
    #[error("history needed to judge rollback: could not read {object} (a shallow or partial clone, or a damaged repository); fetch the full history (`git fetch --unshallow`, or clone without --depth or --filter) or pass --allow-shallow to judge without it")]
    HistoryMissing { object: String },
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Not a regular file, or absent.
    #[error("not a regular file, or absent")]
    NotAFile,
    /// Over [`MAX_FILE_BYTES`]; never inflated.
    #[error("{0} bytes, over the {MAX_FILE_BYTES}-byte limit")]
    TooLarge(u64),
    /// The object database failed: the tool cannot judge (exit 2).
    #[error("{0}")]
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
    /// The tree entry's mode where known (from git objects): part of every cache key, since a
    /// symlink or submodule can carry the same object id as an approved file.
    pub modes: BTreeMap<RepoPath, Mode>,
    /// The repository that [`Entry::Blob`]s are read from.
    pub git_dir: Option<PathBuf>,
    /// Tree objects under (or above) the governed folders that git fsck would refuse, by the
    /// path of the tree ("" for the root tree): nothing below one is in `entries`, and
    /// verification reports each (docs/security.md § Malformed trees).
    pub bad_trees: Vec<(String, TreeError)>,
    /// What the revision's ancestors committed at each governed path (rollback and removal
    /// judgement), when the tree was read as a revision of a repository.
    pub history: Option<std::sync::Arc<crate::source::history::History>>,
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
        let (size, kind) = odb
            .read_header(oid)
            .map_err(|e| ReadError::Git(format!("object {oid}: {}", e.message())))?;
        // A blob-mode tree entry may name a commit or a tree: git fsck refuses that, and
        // checkout fails; it is not a file.
        if kind != git2::ObjectType::Blob {
            return Err(ReadError::NotAFile);
        }
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
    /// Read and write `.git/treaty/history-v1` (off with `--no-cache`).
    pub history_cache: bool,
}

impl Repo {
    /// Opens the repository containing `dir` (searching upwards, as git does).
    pub fn discover(dir: &Path) -> Result<Self, SourceError> {
        // Every object read is hash-checked against its id (libgit2's default, made explicit:
        // alternates and packs are fine because what they hold must hash to what was asked).
        git2::opts::strict_hash_verification(true);
        git2::Repository::discover(dir)
            .map(|repo| Self {
                repo,
                history_cache: true,
            })
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

    /// The parents of `commit`, read from the commit object's own bytes. `.git/info/grafts`,
    /// `.git/shallow` and `refs/replace/` never change what a commit id means: libgit2 applies
    /// grafts and the shallow list when it parses a commit, so the parent lines are read here
    /// instead, and a parent whose object is absent is the caller's to report.
    pub fn parents(&self, commit: git2::Oid) -> Result<Vec<git2::Oid>, SourceError> {
        Ok(self.raw_commit(commit)?.parents)
    }

    /// The first parent of `commit`, if any (from the object's bytes, see [`Repo::parents`]).
    pub fn first_parent(&self, commit: git2::Oid) -> Result<Option<git2::Oid>, SourceError> {
        Ok(self.parents(commit)?.first().copied())
    }

    /// Is the object `id` in the object database (a shallow clone lacks cut-off history)?
    pub fn has_object(&self, id: git2::Oid) -> bool {
        self.repo.odb().is_ok_and(|o| o.exists(id))
    }

    /// The tree and parent lines of a commit object, read and hash-checked from the object
    /// database.
    pub fn raw_commit(&self, commit: git2::Oid) -> Result<RawCommit, SourceError> {
        let data = self.read_object(commit, git2::ObjectType::Commit)?;
        parse_commit(&data).map_err(|reason| SourceError::Object {
            what: format!("commit {commit}"),
            reason: reason.into(),
        })
    }

    /// The bytes of object `id`, which must be of `kind`.
    fn read_object(&self, id: git2::Oid, kind: git2::ObjectType) -> Result<Vec<u8>, SourceError> {
        read_object(&self.repo, id, kind)
    }

    /// The entries of tree object `id`, refused as git fsck would refuse them.
    pub fn read_tree(
        &self,
        id: git2::Oid,
    ) -> Result<Result<Vec<RawEntry>, TreeError>, SourceError> {
        read_tree(&self.repo, id)
    }

    /// [`check_trees`] in this repository.
    pub fn check_trees(
        &self,
        new: git2::Oid,
        old: Option<git2::Oid>,
    ) -> Result<Result<(), (String, TreeError)>, SourceError> {
        check_trees(&self.repo, new, old)
    }

    /// The governed entries of `commit` and of its first parent (what verification judges
    /// equivocation against), if it has one, with the revision's [`crate::source::history::History`]
    /// attached to the tree. History that is needed but absent (a shallow clone) is an error
    /// unless `allow_incomplete` says the caller accepts judging without it.
    pub fn revision(
        &self,
        commit: git2::Oid,
        allow_incomplete: bool,
    ) -> Result<(Tree, Option<Tree>), SourceError> {
        let mut tree = self.tree_at(commit)?;
        let parents = self.parents(commit)?;
        let mut history =
            crate::source::history::History::of_parents(self, commit, &parents, allow_incomplete)?;
        history.find_stale_removals(self, &tree, &parents)?;
        tree.history = Some(std::sync::Arc::new(history));
        let parent = match parents.first() {
            Some(p) if self.has_object(*p) => Some(self.tree_at(*p)?),
            _ => None,
        };
        Ok((tree, parent))
    }

    /// [`Repo::revision`] with complete history required.
    pub fn tree_and_parent(&self, commit: git2::Oid) -> Result<(Tree, Option<Tree>), SourceError> {
        self.revision(commit, false)
    }

    /// Reads the governed entries of `commit`'s tree from git objects. Every tree object on the
    /// way is parsed here and checked as git fsck would (`badTree`, `duplicateEntries`,
    /// `treeNotSorted`, …): libgit2 looks names up by binary search and iterates entries as
    /// stored, so an unsorted or duplicated tree would let this judge a different file than
    /// `git checkout` writes.
    pub fn tree_at(&self, commit: git2::Oid) -> Result<Tree, SourceError> {
        let c = self.raw_commit(commit)?;
        let mut out = Tree::default();
        let root = match self.read_tree(c.tree)? {
            Ok(r) => r,
            Err(e) => {
                out.bad_trees.push((String::new(), e));
                out.git_dir = Some(self.repo.path().to_path_buf());
                return Ok(out);
            }
        };
        let mut blobs: Vec<(RepoPath, git2::Oid)> = Vec::new();
        let mut stack: Vec<(Vec<u8>, git2::Oid, Mode)> = root
            .into_iter()
            .filter(|e| {
                GOVERNED_TOPS
                    .iter()
                    .any(|t| t.as_bytes() == e.name.as_slice())
            })
            .map(|e| (e.name, e.id, e.mode))
            .collect();
        while let Some((name, id, mode)) = stack.pop() {
            if mode == Mode::Tree {
                match self.read_tree(id)? {
                    Ok(entries) => {
                        for e in entries {
                            let mut child = name.clone();
                            child.push(b'/');
                            child.extend_from_slice(&e.name);
                            stack.push((child, e.id, e.mode));
                        }
                    }
                    Err(e) => out
                        .bad_trees
                        .push((String::from_utf8_lossy(&name).into_owned(), e)),
                }
                continue;
            }
            let path = match RepoPath::from_bytes(&name) {
                Ok(p) => p,
                Err(e) => {
                    out.bad_names
                        .push((String::from_utf8_lossy(&name).into_owned(), e.to_string()));
                    continue;
                }
            };
            out.blob_ids.insert(path.clone(), id);
            out.modes.insert(path.clone(), mode);
            match mode {
                Mode::File | Mode::Executable => blobs.push((path, id)),
                Mode::Symlink => {
                    out.entries.insert(path, Entry::Symlink);
                }
                Mode::Gitlink | Mode::Tree => {
                    out.entries.insert(path, Entry::NotAFile);
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

/// The bytes of object `id` in `repo`, which must be of `kind` (hash-checked by libgit2).
pub fn read_object(
    repo: &git2::Repository,
    id: git2::Oid,
    kind: git2::ObjectType,
) -> Result<Vec<u8>, SourceError> {
    let err = |reason: String| SourceError::Object {
        what: format!("{kind} {id}"),
        reason,
    };
    let odb = repo.odb().map_err(|e| err(e.message().to_owned()))?;
    let obj = odb.read(id).map_err(|e| err(e.message().to_owned()))?;
    if obj.kind() != kind {
        return Err(err(format!("is a {}, not a {kind}", obj.kind())));
    }
    Ok(obj.data().to_vec())
}

/// The entries of tree object `id` in `repo`, refused as git fsck would refuse them.
pub fn read_tree(
    repo: &git2::Repository,
    id: git2::Oid,
) -> Result<Result<Vec<RawEntry>, TreeError>, SourceError> {
    let data = read_object(repo, id, git2::ObjectType::Tree)?;
    Ok(parse_tree(&data))
}

/// Checks every tree object reachable from tree `new` that differs from the tree at the same
/// path under `old` (all of them without `old`), as [`parse_tree`] does; the first malformed
/// one is returned with its path. Used wherever libgit2 would otherwise walk trees unchecked
/// (the gate's diff, the audit log's tiles).
pub fn check_trees(
    repo: &git2::Repository,
    new: git2::Oid,
    old: Option<git2::Oid>,
) -> Result<Result<(), (String, TreeError)>, SourceError> {
    let mut stack: Vec<(Vec<u8>, git2::Oid, Option<git2::Oid>)> = vec![(Vec::new(), new, old)];
    while let Some((path, n, o)) = stack.pop() {
        if Some(n) == o {
            continue;
        }
        let entries = match read_tree(repo, n)? {
            Ok(e) => e,
            Err(e) => return Ok(Err((String::from_utf8_lossy(&path).into_owned(), e))),
        };
        let old_subtrees: std::collections::HashMap<Vec<u8>, git2::Oid> = match o {
            Some(o) => read_tree(repo, o)?
                .map(|v| {
                    v.into_iter()
                        .filter(|e| e.mode == Mode::Tree)
                        .map(|e| (e.name, e.id))
                        .collect()
                })
                .unwrap_or_default(),
            None => std::collections::HashMap::new(),
        };
        for e in entries.into_iter().filter(|e| e.mode == Mode::Tree) {
            let mut p = path.clone();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&e.name);
            let before = old_subtrees.get(&e.name).copied();
            stack.push((p, e.id, before));
        }
    }
    Ok(Ok(()))
}

/// A commit object's tree and parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommit {
    pub tree: git2::Oid,
    pub parents: Vec<git2::Oid>,
}

/// Parses the header of a commit object: `tree <hex>` first, then any `parent <hex>` lines.
fn parse_commit(data: &[u8]) -> Result<RawCommit, &'static str> {
    let mut lines = data.split(|&b| b == b'\n');
    let hex_id = |l: &[u8], key: &[u8]| -> Option<git2::Oid> {
        let rest = l.strip_prefix(key)?;
        let s = std::str::from_utf8(rest).ok()?;
        (s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| git2::Oid::from_str(s).ok())
            .flatten()
    };
    let tree = lines
        .next()
        .and_then(|l| hex_id(l, b"tree "))
        .ok_or("the commit object does not start with a valid tree line")?;
    let mut parents = Vec::new();
    for l in lines {
        if !l.starts_with(b"parent ") {
            break;
        }
        parents.push(hex_id(l, b"parent ").ok_or("the commit object has a malformed parent line")?);
    }
    Ok(RawCommit { tree, parents })
}

/// A tree entry's mode, as git fsck accepts them (`100664` is the old group-writable regular
/// file mode, which git still checks out as a regular file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    File,
    Executable,
    Symlink,
    Tree,
    Gitlink,
}

impl Mode {
    /// A stable byte for cache keys.
    pub fn tag(self) -> u8 {
        match self {
            Mode::File => b'f',
            Mode::Executable => b'x',
            Mode::Symlink => b'l',
            Mode::Tree => b'd',
            Mode::Gitlink => b'm',
        }
    }
}

/// One entry of a tree object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub mode: Mode,
    pub id: git2::Oid,
}

/// Why a tree object was refused. The first word is git fsck's message id for the same defect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    #[error("badTree: {0}")]
    Truncated(&'static str),
    #[error("zeroPaddedFilemode: entry {name:?} has mode {mode}")]
    ZeroPaddedMode { name: String, mode: String },
    #[error("badFilemode: entry {name:?} has mode {mode}")]
    BadMode { name: String, mode: String },
    #[error("emptyName: an entry has an empty name")]
    EmptyName,
    #[error("fullPathname: entry {0:?} contains '/'")]
    FullPathname(String),
    #[error("hasDot/hasDotdot/hasDotgit: entry {0:?}")]
    ReservedName(String),
    #[error("nullSha1: entry {0:?} points to the null object id")]
    NullId(String),
    #[error("duplicateEntries: {0:?} appears more than once")]
    Duplicate(String),
    #[error("treeNotSorted: {after:?} comes after {before:?}")]
    NotSorted { before: String, after: String },
}

/// The longest tree object parsed (a governed folder with this many bytes of entries is
/// hostile, and its entries would be refused one by one anyway).
const MAX_TREE_BYTES: usize = 64 * 1024 * 1024;

/// Parses a tree object and applies git fsck's tree checks: every entry `<octal mode> <name>\0`
/// and a 20-byte id; modes among the five git writes (no zero padding); names non-empty,
/// without `/`, not `.`, `..` or any spelling of `.git` that a case-insensitive, HFS+ or NTFS
/// checkout would write as `.git`; no null ids; no name twice (a blob and a tree of one name
/// included); entries in git's order, where a tree sorts as its name followed by `/`.
pub fn parse_tree(data: &[u8]) -> Result<Vec<RawEntry>, TreeError> {
    if data.len() > MAX_TREE_BYTES {
        return Err(TreeError::Truncated(
            "the tree object is larger than 64 MiB",
        ));
    }
    let mut out: Vec<RawEntry> = Vec::new();
    let mut names: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let mut prev_key: Option<Vec<u8>> = None;
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or(TreeError::Truncated("an entry has no mode"))?;
        let mode_txt = &rest[..sp];
        rest = &rest[sp + 1..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(TreeError::Truncated("an entry's name is not terminated"))?;
        let name = rest[..nul].to_vec();
        rest = &rest[nul + 1..];
        if rest.len() < 20 {
            return Err(TreeError::Truncated("an entry's object id is cut short"));
        }
        let (raw_id, tail) = rest.split_at(20);
        rest = tail;
        let shown = || String::from_utf8_lossy(&name).into_owned();
        let mode_str = String::from_utf8_lossy(mode_txt).into_owned();
        if mode_txt.is_empty() || !mode_txt.iter().all(|b| (b'0'..=b'7').contains(b)) {
            return Err(TreeError::Truncated("an entry's mode is not octal"));
        }
        if mode_txt.len() > 1 && mode_txt[0] == b'0' {
            return Err(TreeError::ZeroPaddedMode {
                name: shown(),
                mode: mode_str,
            });
        }
        let mode = match mode_txt {
            b"100644" | b"100664" => Mode::File,
            b"100755" => Mode::Executable,
            b"120000" => Mode::Symlink,
            b"40000" => Mode::Tree,
            b"160000" => Mode::Gitlink,
            _ => {
                return Err(TreeError::BadMode {
                    name: shown(),
                    mode: mode_str,
                })
            }
        };
        if name.is_empty() {
            return Err(TreeError::EmptyName);
        }
        if name.contains(&b'/') {
            return Err(TreeError::FullPathname(shown()));
        }
        if is_reserved_name(&name) {
            return Err(TreeError::ReservedName(shown()));
        }
        if raw_id.iter().all(|&b| b == 0) {
            return Err(TreeError::NullId(shown()));
        }
        if !names.insert(name.clone()) {
            return Err(TreeError::Duplicate(shown()));
        }
        let mut key = name.clone();
        if mode == Mode::Tree {
            key.push(b'/');
        }
        if let Some(p) = &prev_key {
            if *p >= key {
                return Err(TreeError::NotSorted {
                    before: String::from_utf8_lossy(p).into_owned(),
                    after: String::from_utf8_lossy(&key).into_owned(),
                });
            }
        }
        prev_key = Some(key);
        let id = git2::Oid::from_bytes(raw_id)
            .map_err(|_| TreeError::Truncated("an entry's object id is malformed"))?;
        out.push(RawEntry { name, mode, id });
    }
    Ok(out)
}

/// `.`, `..`, or a name some checkout would write as `.git`: any ASCII case, with trailing dots
/// or spaces (NTFS), the 8.3 short name `git~1`, or with code points HFS+ ignores.
fn is_reserved_name(name: &[u8]) -> bool {
    if name == b"." || name == b".." {
        return true;
    }
    let text = String::from_utf8_lossy(name);
    let hfs: String = text
        .chars()
        .filter(
            |c| !matches!(*c as u32, 0x200C..=0x200F | 0x202A..=0x202E | 0x206A..=0x206F | 0xFEFF),
        )
        .collect::<String>()
        .to_ascii_lowercase();
    let ntfs = hfs.trim_end_matches(['.', ' ']);
    ntfs == ".git" || ntfs == "git~1"
}

/// One file on disk as a tree entry, under the same rules as a git tree's: a symlink or special
/// file is never followed, a file over [`MAX_FILE_BYTES`] is never read. Every command that reads
/// the work tree (`verify --worktree`, `validate`, `sign`) goes through here, so they agree.
pub fn entry_on_disk(p: &Path, meta: &std::fs::Metadata) -> Result<Entry, SourceError> {
    let ft = meta.file_type();
    Ok(if ft.is_symlink() {
        Entry::Symlink
    } else if !ft.is_file() {
        Entry::NotAFile
    } else if meta.len() > MAX_FILE_BYTES {
        Entry::TooLarge(meta.len())
    } else {
        use std::io::Read as _;
        // Read at most one byte past the limit: a file that grew after the stat is still refused.
        let mut buf = Vec::new();
        std::fs::File::open(p)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf))
            .map_err(|source| SourceError::Io {
                path: p.display().to_string(),
                source,
            })?;
        if buf.len() as u64 > MAX_FILE_BYTES {
            Entry::TooLarge(buf.len() as u64)
        } else {
            Entry::File(buf)
        }
    })
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
            out.entries.insert(path, entry_on_disk(&p, &meta)?);
        }
    }
    Ok(out)
}

/// The entry at `rel` below the work tree `root`, read under [`entry_on_disk`]'s rules and
/// never through a symlink: a symlinked folder on the way (`treaties/pl -> ../policies`) makes
/// the entry a [`Entry::Symlink`], as a symlinked file does, so `validate PATH` and `sign PATH`
/// judge exactly what `verify --worktree` judges. `Ok(None)`: nothing there.
pub fn read_in_repo(root: &Path, rel: &str) -> Result<Option<Entry>, SourceError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| SourceError::Io { path, source }
    };
    let mut at = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&at)(e)),
        };
        if meta.file_type().is_symlink() {
            return Ok(Some(Entry::Symlink));
        }
        if i + 1 == parts.len() {
            return entry_on_disk(&at, &meta).map(Some);
        }
        if !meta.is_dir() {
            return Ok(None);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: &str, name: &[u8], id: u8) -> Vec<u8> {
        let mut b = format!("{mode} ").into_bytes();
        b.extend_from_slice(name);
        b.push(0);
        b.extend_from_slice(&[id; 20]);
        b
    }

    fn tree(entries: &[(&str, &[u8])]) -> Vec<u8> {
        entries
            .iter()
            .enumerate()
            .flat_map(|(i, (m, n))| entry(m, n, i as u8 + 1))
            .collect()
    }

    /// One valid fixture, then one defect at a time: each must be refused with git fsck's id.
    #[test]
    fn trees_are_refused_as_git_fsck_refuses_them() {
        let honest = tree(&[
            ("100644", b"a"),
            ("100755", b"a.b"),
            ("40000", b"a"),
            ("120000", b"b"),
            ("160000", b"c"),
        ]);
        // "a" twice (file and tree) is a duplicate even though git orders them apart.
        assert!(matches!(parse_tree(&honest), Err(TreeError::Duplicate(_))));
        let honest = tree(&[
            ("100644", b"a"),
            ("100755", b"a.b"),
            ("40000", b"a0"),
            ("40000", b"d"),
            ("100644", b"d.txt"),
            ("120000", b"e"),
            ("160000", b"f"),
            ("100664", b"g"),
        ]);
        // A tree "d" sorts as "d/", after "d.txt": this order is wrong...
        assert!(matches!(
            parse_tree(&honest),
            Err(TreeError::NotSorted { .. })
        ));
        // ...and this one is git's.
        let honest = tree(&[
            ("100644", b"a"),
            ("100755", b"a.b"),
            ("40000", b"a0"),
            ("100644", b"d.txt"),
            ("40000", b"d"),
            ("120000", b"e"),
            ("160000", b"f"),
            ("100664", b"g"),
        ]);
        let parsed = parse_tree(&honest).unwrap();
        assert_eq!(parsed.len(), 8);
        assert_eq!(parsed[4].mode, Mode::Tree);
        assert_eq!(parsed[7].mode, Mode::File);
        assert_eq!(parse_tree(b"").unwrap(), vec![]);

        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("badTree", honest[..honest.len() - 3].to_vec()),
            ("badTree", b"100644 a".to_vec()),
            ("badTree", b"10x644 a\0aaaaaaaaaaaaaaaaaaaa".to_vec()),
            (
                "duplicateEntries",
                tree(&[("100644", b"a"), ("100644", b"a")]),
            ),
            (
                "duplicateEntries",
                tree(&[("40000", b"a"), ("100644", b"a")]),
            ),
            ("treeNotSorted", tree(&[("100644", b"b"), ("100644", b"a")])),
            ("zeroPaddedFilemode", tree(&[("0100644", b"a")])),
            ("zeroPaddedFilemode", tree(&[("040000", b"a")])),
            ("badFilemode", tree(&[("100600", b"a")])),
            ("badFilemode", tree(&[("100000", b"a")])),
            ("emptyName", tree(&[("100644", b"")])),
            ("fullPathname", tree(&[("100644", b"a/b")])),
            ("hasDot", tree(&[("40000", b".")])),
            ("hasDot", tree(&[("40000", b"..")])),
            ("hasDot", tree(&[("40000", b".git")])),
            ("hasDot", tree(&[("40000", b".GiT")])),
            ("hasDot", tree(&[("40000", b".git. ")])),
            ("hasDot", tree(&[("40000", b"GIT~1")])),
            ("hasDot", tree(&[("40000", ".g\u{200c}it".as_bytes())])),
            ("nullSha1", {
                let mut b = b"100644 a\0".to_vec();
                b.extend_from_slice(&[0; 20]);
                b
            }),
        ];
        for (id, bytes) in cases {
            let e = parse_tree(&bytes).expect_err(id);
            assert!(e.to_string().starts_with(id), "{id}: got {e}");
        }
    }

    #[test]
    fn commit_headers_are_read_from_the_object_bytes() {
        let t = "1".repeat(40);
        let p1 = "2".repeat(40);
        let p2 = "3".repeat(40);
        let raw =
            format!("tree {t}\nparent {p1}\nparent {p2}\nauthor x <x> 0 +0000\n\nparent {t}\n");
        let c = parse_commit(raw.as_bytes()).unwrap();
        assert_eq!(c.tree.to_string(), t);
        assert_eq!(
            c.parents
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec![p1, p2]
        );
        assert!(parse_commit(b"parent 1111\n").is_err());
        assert!(parse_commit(format!("tree {}\n", "A".repeat(40)).as_bytes()).is_err());
        assert!(parse_commit(format!("tree {t}\nparent zz\n").as_bytes()).is_err());
    }

    proptest::proptest! {
        /// Any bytes: a tree is parsed or refused, never a panic; what parses is in git's order.
        #[test]
        fn parse_tree_never_panics(b in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(entries) = parse_tree(&b) {
                for w in entries.windows(2) {
                    proptest::prop_assert!(w[0].name != w[1].name);
                }
            }
        }
    }
}
