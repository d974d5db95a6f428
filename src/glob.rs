//! The delegation glob dialect.
//!
//! Owns pattern parsing and matching for `keys/root.json` delegations. The dialect is small on
//! purpose, so that a stranger's verifier matches exactly what ours does (docs/model.md §
//! Delegations):
//! - `*` matches any run of characters except `/` (possibly empty);
//! - `**` matches any run of characters including `/` (possibly empty) — a run of characters,
//!   not of segments: `a/**/b` does not match `a/b` (unlike gitignore);
//! - every other character matches itself, case-sensitively. `?`, `[`, `]`, `{`, `}` and `\`
//!   are refused in patterns so that nobody writes one expecting another dialect's meaning.
//!
//! Matching is linear-time in practice (a classic two-pointer wildcard matcher per segment kind),
//! and never recurses, so hostile patterns cannot blow the stack.

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobError {
    #[error("pattern is empty")]
    Empty,
    #[error("pattern uses '{0}', which this dialect does not support (only '*' and '**')")]
    Unsupported(char),
    #[error("pattern has three or more '*' in a row")]
    TooManyStars,
    #[error("pattern is absolute or has a '.' or '..' segment")]
    BadPath,
    #[error("pattern is longer than 1024 bytes")]
    TooLong,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Star,
    DoubleStar,
}

/// A compiled delegation pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    src: String,
    toks: Vec<Tok>,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        if pattern.len() > 1024 {
            return Err(GlobError::TooLong);
        }
        if pattern.starts_with('/')
            || pattern
                .split('/')
                .any(|s| s == "." || s == ".." || s.is_empty())
        {
            return Err(GlobError::BadPath);
        }
        let mut toks = Vec::new();
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    let mut n = 0;
                    while i < chars.len() && chars[i] == '*' {
                        n += 1;
                        i += 1;
                    }
                    match n {
                        1 => toks.push(Tok::Star),
                        2 => toks.push(Tok::DoubleStar),
                        _ => return Err(GlobError::TooManyStars),
                    }
                    continue;
                }
                c @ ('?' | '[' | ']' | '{' | '}' | '\\') => return Err(GlobError::Unsupported(c)),
                c => toks.push(Tok::Lit(c)),
            }
            i += 1;
        }
        Ok(Self {
            src: pattern.to_owned(),
            toks,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.src
    }

    /// Does `path` match the whole pattern?
    ///
    /// Backtracking wildcard matching with memo of visited (token, position) states; the table
    /// bounds work to O(tokens × chars) whatever the pattern.
    pub fn is_match(&self, path: &str) -> bool {
        let s: Vec<char> = path.chars().collect();
        let (nt, ns) = (self.toks.len(), s.len());
        // seen[t][p]: state already explored and failed.
        let mut seen = vec![false; (nt + 1) * (ns + 1)];
        let mut stack = vec![(0usize, 0usize)];
        while let Some((t, p)) = stack.pop() {
            let idx = t * (ns + 1) + p;
            if seen[idx] {
                continue;
            }
            seen[idx] = true;
            if t == nt {
                if p == ns {
                    return true;
                }
                continue;
            }
            match &self.toks[t] {
                Tok::Lit(c) => {
                    if p < ns && s[p] == *c {
                        stack.push((t + 1, p + 1));
                    }
                }
                Tok::Star => {
                    // Zero characters, or one more non-'/' character.
                    stack.push((t + 1, p));
                    if p < ns && s[p] != '/' {
                        stack.push((t, p + 1));
                    }
                }
                Tok::DoubleStar => {
                    stack.push((t + 1, p));
                    if p < ns {
                        stack.push((t, p + 1));
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).unwrap().is_match(s)
    }

    #[test]
    fn single_star_does_not_cross_slash() {
        assert!(m("treaties/*.json", "treaties/A.json"));
        assert!(!m("treaties/*.json", "treaties/x/A.json"));
        assert!(m(
            "treaties/AURORA-AKASH-*",
            "treaties/AURORA-AKASH-001.json"
        ));
        assert!(m(
            "treaties/AURORA-AKASH-*",
            "treaties/AURORA-AKASH-001.json.sig"
        ));
    }

    #[test]
    fn double_star_crosses_slash() {
        assert!(m("keys/**", "keys/groups/a.json"));
        assert!(m("**", "anything/at/all"));
        assert!(m("a/**/b", "a/x/y/b"));
        // `**` is a run of characters, not a run of segments: `a/**/b` needs both slashes, so
        // it does not cover `a/b` (write `a/**b`, or a second pattern, to include it). Pinned
        // here because other dialects (gitignore) decide the other way.
        assert!(!m("a/**/b", "a/b"));
        assert!(m("a/**b", "a/b"));
        assert!(m("a/**/b", "a/x/b"));
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert!(!m("treaties/*.json", "Treaties/A.json"));
        assert!(!m("treaties/*.json", "treaties/A.JSON"));
    }

    #[test]
    fn other_dialects_are_refused() {
        assert_eq!(Glob::new("a?"), Err(GlobError::Unsupported('?')));
        assert_eq!(Glob::new("a[bc]"), Err(GlobError::Unsupported('[')));
        assert_eq!(Glob::new("a/***"), Err(GlobError::TooManyStars));
        assert_eq!(Glob::new("/abs"), Err(GlobError::BadPath));
        assert_eq!(Glob::new("a/../b"), Err(GlobError::BadPath));
        assert_eq!(Glob::new(""), Err(GlobError::Empty));
    }

    #[test]
    fn hostile_patterns_finish() {
        let p = "*a".repeat(200);
        let s = "a".repeat(1000) + "b";
        assert!(!m(&p, &s));
    }

    proptest! {
        #[test]
        fn literal_patterns_match_only_themselves(s in "[a-z]{1,5}(/[a-z]{1,5}){0,3}", t in "[a-z]{1,5}(/[a-z]{1,5}){0,3}") {
            prop_assert!(m(&s, &s));
            prop_assert_eq!(m(&s, &t), s == t);
        }

        #[test]
        fn single_star_matches_exactly_one_segment(seg in "[a-z]{0,6}", rest in "[a-z]{1,4}") {
            let in_dir = format!("d/{seg}.json");
            let deeper = format!("d/{rest}/{seg}.json");
            prop_assert!(m("d/*.json", &in_dir));
            prop_assert!(!m("d/*.json", &deeper));
            prop_assert!(m("d/**", &deeper));
        }
    }
}
