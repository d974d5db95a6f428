//! What a signer reviews before signing (`treaty sign --pending`): a file's change since its
//! last approval — the newest commit on HEAD's first-parent line at which the file was
//! approved under that commit's own trust — as a line diff.
//!
//! Why the last *approval* and not HEAD: a member asked to sign should see everything their
//! signature would newly vouch for, including changes committed (unsigned) since the content
//! the thresholds last agreed on.

use crate::source::{Repo, SourceError};
use crate::trust::Anchor;

/// How far back the first-parent walk looks for an approval (a bound on work, not a rule: past
/// it the file is shown whole, as if never approved).
pub const MAX_COMMITS: usize = 500;

/// The content of `path` at its last approval, with that commit (`None`: never approved within
/// [`MAX_COMMITS`] first-parent commits of HEAD, or no HEAD).
pub fn last_approved(repo: &Repo, path: &str) -> Result<Option<(git2::Oid, Vec<u8>)>, SourceError> {
    let Ok(mut at) = repo.resolve("HEAD") else {
        return Ok(None);
    };
    let rp = match crate::path::RepoPath::new(path) {
        Ok(p) => p,
        Err(_) => return Ok(None),
    };
    for _ in 0..MAX_COMMITS {
        let tree = repo.tree_at(at)?;
        if let Some(bytes) = tree.file(rp.as_str()) {
            if crate::verify::judge_one(&tree, &Anchor::Repository, path)
                .is_some_and(|v| v.approved)
            {
                return Ok(Some((at, bytes.to_vec())));
            }
        }
        match repo.first_parent(at)? {
            Some(p) => at = p,
            None => break,
        }
    }
    Ok(None)
}

/// A unified diff of `old` → `new` (3 lines of context), for a person; lossy UTF-8.
pub fn diff(old: &[u8], new: &[u8], old_name: &str, new_name: &str) -> String {
    let (a, b) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
    similar::TextDiff::from_lines(a.as_ref(), b.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_diff_shows_the_changed_line_in_context() {
        let d = super::diff(b"a\nb\nc\n", b"a\nB\nc\n", "old", "new");
        assert!(d.contains("-b\n+B\n"), "{d}");
        assert!(d.starts_with("--- old\n+++ new\n"), "{d}");
        assert_eq!(super::diff(b"x\n", b"x\n", "o", "n"), "");
    }
}
